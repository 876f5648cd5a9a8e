"""Every `edge-inference` subcommand fails cleanly on bad input: one table, each row a real process.

A row runs ``python -m edge_inference.cli ...`` in its own folder (so default outputs
land there) and asserts: non-zero exit (a given one where it matters), the last
stderr line starts with ``error:``, no traceback, and nothing written or changed
there (every file hashed before and after; no staging folder left). Rows run a few
at a time: a process start costs 1-3 s of imports.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_fixtures import HAS_TORCH
from test_eval import write_eval_bag  # sibling test module: a small real rosbag2 for eval

from edge_inference import cli

REPO = Path(__file__).resolve().parents[1]
FSQ_MODEL = REPO / "models" / "fsq_hapt"
CNN_POLICY = REPO / "models" / "sim_demo" / "policy_cnn"


@dataclass(frozen=True)
class Row:
    name: str
    args: str  # {placeholders}: shared fixtures; {own_X}: a private copy of fixture X in the row's folder
    rc: int | None = None  # None: any non-zero exit
    may_write: tuple[str, ...] = ()  # files (relative to the row folder) a failure may leave, e.g. a report
    timeout: float = 120.0
    needs_torch: bool = False  # without torch (robot profile) the command must say so: exit 3, one line


ROWS = [
    # run: up
    Row("up-config-missing", "up --config {shared}/missing.yaml --duration 1"),
    Row("up-config-syntax", "up --config {shared}/syntax.yaml --duration 1"),
    Row("up-config-list", "up --config {shared}/list.yaml --duration 1"),
    Row("up-param-unknown-node", "up --param bogus_node.x=1 --duration 1"),
    Row("up-param-no-equals", "up --param policy_node.mode --duration 1"),
    Row("up-param-wrong-type", "up --param policy_node.control_rate=fast --duration 1"),
    Row("up-param-out-of-range", "up --param policy_node.control_rate=-5.0 --duration 1"),
    Row("up-calibration-syntax", "up --param pwm_bridge_node.calibration_file={shared}/syntax.yaml --duration 1"),
    Row("up-duration-negative", "up --duration -5", rc=2),
    # run: demo, drive-sim, record, top
    Row("demo-laps-zero", "demo --laps 0", rc=2),
    Row("demo-duration-negative", "demo --duration -1", rc=2),
    Row("drive-sim-laps-zero", "drive-sim --laps 0", rc=2),
    Row("drive-sim-laps-negative", "drive-sim --laps -2 --mode direct", rc=2),
    Row("drive-sim-timeout-negative", "drive-sim --timeout -1", rc=2),
    Row("drive-sim-model-missing", "drive-sim --model {shared}/missing --mode direct", rc=2),
    Row("drive-sim-model-garbage", "drive-sim --model {shared}/garbage.onnx --backend onnxruntime --mode direct",
        rc=2),
    Row("record-duration-zero", "record --duration 0 --out bag", rc=2),
    Row("record-duration-negative", "record --duration -1 --out bag", rc=2),
    Row("record-unknown-topic", "record --topics /no/such/topic --out bag", rc=2),
    Row("record-out-exists", "record --duration 1 --out {own_existing}", rc=2),
    Row("top-refresh-zero", "top --refresh-hz 0", rc=2),
    Row("top-duration-negative", "top --duration -1", rc=2),
    # train
    Row("train-act-data-missing", "train-act --data {shared}/missing --out ckpt --small", rc=2, needs_torch=True),
    Row("train-act-data-empty-npz", "train-act --data {shared}/empty.npz --out ckpt --small", rc=2, needs_torch=True),
    Row("train-act-data-garbage-npz", "train-act --data {shared}/garbage.npz --out ckpt --small", rc=2, needs_torch=True),
    Row("train-act-epochs-zero", "train-act --data {shared}/missing --out ckpt --epochs 0", rc=2),
    Row("train-act-chunk-zero", "train-act --data {shared}/missing --out ckpt --chunk-size 0", rc=2),
    Row("train-act-data-not-demos", "train-act --data {shared}/samples_noimu.npz --out ckpt --small", rc=2, needs_torch=True),
    Row("train-act-keeps-checkpoint", "train-act --data {shared}/demos_empty.npz --out {own_cnn} --small", rc=2,
        needs_torch=True),
    Row("train-fsq-data-missing", "train-fsq --data {shared}/missing --out ckpt", rc=2),
    Row("train-fsq-data-empty-npz", "train-fsq --data {shared}/empty.npz --out ckpt", rc=2),
    Row("train-fsq-data-wrong-arrays", "train-fsq --data {shared}/samples_noimu.npz --out ckpt", rc=2),
    Row("train-fsq-epochs-zero", "train-fsq --data {shared}/missing --out ckpt --epochs 0", rc=2),
    Row("train-fsq-window-zero", "train-fsq --data {shared}/missing --out ckpt --window-length 0", rc=2),
    Row("train-sim-policy-data-missing", "train-sim-policy --data {shared}/missing --out ckpt", rc=2),
    Row("train-sim-policy-data-empty-file", "train-sim-policy --data {shared}/empty.npz --out ckpt", rc=2),
    Row("train-sim-policy-data-no-frames", "train-sim-policy --data {shared}/demos_empty.npz --out ckpt", rc=2),
    Row("train-sim-policy-data-wrong-arrays", "train-sim-policy --data {shared}/samples_noimu.npz --out {own_cnn}",
        rc=2),
    Row("train-sim-policy-epochs-zero", "train-sim-policy --data {shared}/missing --out ckpt --epochs 0", rc=2),
    Row("gen-demos-episodes-zero", "gen-demos --episodes 0 --out demos", rc=2),
    Row("gen-demos-seconds-negative", "gen-demos --seconds -3 --out demos", rc=2),
    Row("gen-demos-out-is-a-file", "gen-demos --episodes 1 --seconds 1 --out {shared}/empty.txt", rc=2),
    # deploy
    Row("export-model-missing", "export --model {shared}/missing", rc=2),
    Row("export-model-empty-dir", "export --model {own_emptydir}", rc=2, needs_torch=True),
    Row("export-checkpoint-config-not-json", "export --model {own_badjson}", rc=2),
    Row("export-checkpoint-weights-truncated", "export --model {own_badweights}", rc=2, needs_torch=True),
    Row("export-tolerance-negative", "export --model {own_fsq} --tolerance -1", rc=2),
    Row("export-parity-fails-keeps-model", "export --model {own_fsq} --tolerance 1e-15", rc=1, needs_torch=True),
    Row("export-samples-garbage", "export --model {own_fsq} --samples {shared}/garbage.npz", rc=2),
    Row("export-samples-empty", "export --model {own_fsq} --samples {shared}/empty.npz", rc=2),
    Row("quantize-model-missing", "quantize --model {shared}/missing --samples {shared}/empty.npz", rc=2),
    Row("quantize-model-garbage-onnx", "quantize --model {shared}/garbage.onnx --samples {shared}/fsq_samples.npz",
        rc=2),
    Row("quantize-model-empty-onnx", "quantize --model {shared}/empty.onnx --samples {shared}/fsq_samples.npz", rc=2),
    Row("quantize-samples-empty", "quantize --model {own_fsq} --samples {shared}/empty.npz", rc=2),
    Row("quantize-samples-garbage", "quantize --model {own_fsq} --samples {shared}/garbage.npz", rc=2),
    Row("quantize-samples-lack-input", "quantize --model {own_fsq} --samples {shared}/samples_noimu.npz", rc=2),
    Row("quantize-num-calibration-zero", "quantize --model {own_fsq} --samples {shared}/fsq_samples.npz "
        "--num-calibration 0", rc=2),
    Row("quantize-dataset-wrong-kind", "quantize --model {own_fsq} --dataset donkey:{shared}/missing", rc=2),
    Row("hailo-compile-model-missing", "hailo-compile --model {shared}/missing", rc=2),
    Row("hailo-compile-no-npu-onnx", "hailo-compile --model {own_fsq}", rc=2),
    Row("hailo-compile-num-calibration-zero", "hailo-compile --model {own_fsq} --num-calibration 0", rc=2),
    Row("hailo-verify-model-missing", "hailo-verify --model {shared}/missing"),
    Row("hailo-verify-limit-zero", "hailo-verify --model {own_fsq} --limit 0", rc=2),
    # train: export-dataset
    Row("export-dataset-bag-missing", "export-dataset {shared}/missing --out ds", rc=2),
    Row("export-dataset-not-a-bag", "export-dataset {shared}/emptydir --out ds", rc=2),
    Row("export-dataset-out-exists", "export-dataset {shared}/bag --out {own_existing}", rc=2),
    Row("export-dataset-fps-zero", "export-dataset {shared}/bag --out ds --fps 0", rc=2),
    Row("export-dataset-gap-negative", "export-dataset {shared}/bag --out ds --gap -1", rc=2),
    # evaluate
    Row("eval-bag-missing", "eval --bag {shared}/missing --model heuristic --out report", rc=2),
    Row("eval-bag-garbage", "eval --bag {shared}/garbage.onnx --model heuristic --out report", rc=2),
    Row("eval-model-missing", "eval --bag {shared}/bag --model {shared}/missing --out report", rc=2),
    Row("eval-model-garbage-onnx", "eval --bag {shared}/bag --model {shared}/garbage.onnx --backend onnxruntime "
        "--out report", rc=2),
    Row("eval-model-metadata-disagrees", "eval --bag {shared}/bag --model {shared}/mismatch_policy --backend "
        "onnxruntime --out report", rc=2),
    Row("eval-model-wrong-kind", "eval --bag {shared}/bag --model {fsq_model} --backend onnxruntime --out report",
        rc=2),
    Row("eval-policy-outputs-nan", "eval --bag {shared}/bag --model {shared}/nan_policy --backend onnxruntime "
        "--out report", rc=1),
    Row("eval-no-model", "eval --bag {shared}/bag --out report", rc=2),
    Row("eval-rate-zero", "eval --bag {shared}/bag --model heuristic --realtime --rate 0 --out report", rc=2),
    Row("eval-behavior-model-garbage", "eval --bag {shared}/bag --behavior-model {shared}/garbage.onnx "
        "--behavior-backend onnxruntime --out report", rc=2),
    Row("import-tub-missing", "import-tub {shared}/missing --out bag", rc=2),
    Row("import-tub-not-a-tub", "import-tub {shared}/emptydir --out bag", rc=2),
    Row("import-tub-out-exists", "import-tub {shared}/tub_ok --out {own_existing}", rc=2),
    Row("import-tub-only-bad-values", "import-tub {shared}/tub_bad_values --out bag", rc=2),
    Row("import-tub-image-path-escapes", "import-tub {shared}/tub_escape --out bag", rc=2),
    Row("import-tub-catalog-path-escapes", "import-tub {shared}/tub_catalog_escape --out bag", rc=2),
    Row("import-hapt-root-missing", "import-hapt {shared}/missing --experiment 1 --user 1 --classes-from "
        "{fsq_model} --out bag", rc=2),
    Row("import-hapt-experiment-zero", "import-hapt {shared}/missing --experiment 0 --user 1 --classes-from "
        "{fsq_model} --out bag", rc=2),
    Row("import-hapt-classes-not-json", "import-hapt {shared}/missing --experiment 1 --user 1 --classes-from "
        "{shared}/badjson --out bag", rc=2),
    # bench
    Row("bench-runs-too-few", "bench --runs 100", rc=2),
    Row("bench-threads-zero", "bench --threads 0", rc=2),
    Row("bench-pipeline-frames-zero", "bench --pipeline --frames 0", rc=2),
    Row("bench-fsq-model-garbage", "bench --fsq-model {shared}/garbage.onnx --backends onnxruntime"),
    Row("bench-bridge-rate-zero", "bench-bridge --rate 0", rc=2),
    Row("bench-bridge-runs-zero", "bench-bridge --runs 0", rc=2),
    Row("bench-sim-frames-zero", "bench-sim --frames 0", rc=2),
    Row("bench-monitor-runs-zero", "bench-monitor --runs 0", rc=2),
    # board
    Row("calibrate-port-missing", "calibrate --port {shared}/no-such-tty --file {own_calibration}", rc=2),
    Row("calibrate-file-syntax", "calibrate --port {shared}/no-such-tty --file {shared}/syntax.yaml", rc=2),
    Row("calibrate-baudrate-zero", "calibrate --port {shared}/no-such-tty --baudrate 0", rc=2),
]


# ---------------------------------------------------------------------------------------- fixtures
def _onnx_policy(path: Path, meta: dict, out_shape: list[int], value: float) -> None:
    """A real ONNX policy with the ACT I/O contract whose actions are the constant ``value``."""
    import onnx
    from onnx import TensorProto, helper

    h, w = meta["image_size"]
    const = helper.make_tensor("c", TensorProto.FLOAT, out_shape, [value] * int(np.prod(out_shape)))
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["actions"], value=const)], "policy",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, [1, meta["state_dim"]])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "edge_inference", json.dumps(meta)
    path.mkdir(parents=True)
    onnx.save(model, str(path / "model.onnx"))


def _tub(root: Path, records: list[dict], paths: list[str] | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    lines = []
    for i, rec in enumerate(records):
        rec = {"_index": i, "_session_id": "s0", "_timestamp_ms": 1_639_716_037_542 + 50 * i,
               "cam/image_array": f"{i}.jpg", "user/mode": "user", **rec}
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), np.full((12, 16, 3), 80, np.uint8))
        lines.append(json.dumps(rec))
    (root / "catalog_0.catalog").write_text("\n".join(lines) + "\n")
    manifest = [[], [], {}, {}, {"paths": paths or ["catalog_0.catalog"], "current_index": len(records),
                                 "max_len": 1000, "deleted_indexes": []}]
    (root / "manifest.json").write_text("\n".join(json.dumps(m) for m in manifest) + "\n")
    return root


def make_shared(base: Path) -> Path:
    shared = base / "shared"
    shared.mkdir()
    for name in ("empty.npz", "empty.onnx", "empty.yaml", "empty.txt"):
        (shared / name).write_bytes(b"")
    rng = np.random.default_rng(0)
    for name in ("garbage.onnx", "garbage.npz"):
        (shared / name).write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    (shared / "syntax.yaml").write_text("policy_node:\n  ros__parameters: {control_rate: [30\n")
    (shared / "list.yaml").write_text("- policy_node\n- camera_node\n")
    (shared / "emptydir").mkdir()
    (shared / "badjson").mkdir()
    (shared / "badjson" / "config.json").write_text("{not json")
    np.savez(shared / "samples_noimu.npz", foo=np.zeros((4, 3), np.float32))
    np.savez(shared / "demos_empty.npz", images=np.zeros((0, 8, 8, 3), np.uint8), states=np.zeros((0, 2)),
             actions=np.zeros((0, 2)), episode_index=np.zeros(0, np.int64))
    import onnxruntime as ort

    shape = ort.InferenceSession(str(FSQ_MODEL / "model.onnx"), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    imu = np.random.default_rng(1).standard_normal((16, *shape[1:])).astype(np.float32)
    np.savez(shared / "fsq_samples.npz", imu=imu)
    meta = {"model": "act", "image_size": [8, 8], "chunk_size": 4, "state_dim": 2, "action_dim": 2,
            "dt": 1 / 30, "action_names": ["steering", "throttle"], "action_std": [0.5, 0.1],
            "inputs": {"image": [1, 3, 8, 8], "state": [1, 2]}, "outputs": ["actions"]}
    _onnx_policy(shared / "nan_policy", meta, [1, 4, 2], float("nan"))
    _onnx_policy(shared / "mismatch_policy", meta | {"action_dim": 3, "action_names": ["a", "b", "c"]},
                 [1, 4, 2], 0.0)
    write_eval_bag(shared / "bag")
    ok = {"user/angle": 0.1, "user/throttle": 0.2}
    _tub(shared / "tub_ok", [ok, ok])
    _tub(shared / "tub_bad_values", [{"user/angle": float("nan"), "user/throttle": 0.2},
                                     {"user/angle": 0.1, "user/throttle": 7.5},
                                     {"user/angle": float("inf"), "user/throttle": 0.0}])
    cv2.imwrite(str(shared / "outside.jpg"), np.full((12, 16, 3), 80, np.uint8))
    _tub(shared / "tub_escape", [ok | {"cam/image_array": "../../outside.jpg"},
                                 ok | {"cam/image_array": str(shared / "outside.jpg")}])
    _tub(shared / "tub_catalog_escape", [ok], paths=["../tub_ok/catalog_0.catalog"])
    # private copies (made per row): a deployed model, a damaged checkpoint, an existing output folder
    own = base / "own"
    shutil.copytree(FSQ_MODEL, own / "fsq")
    shutil.copytree(CNN_POLICY, own / "cnn")
    (own / "emptydir").mkdir()
    (own / "badjson").mkdir()
    (own / "badjson" / "config.json").write_text('{"type": "fsq_classifier", ')
    (own / "badweights").mkdir()
    shutil.copy(FSQ_MODEL / "config.json", own / "badweights" / "config.json")
    (own / "badweights" / "model.safetensors").write_bytes((FSQ_MODEL / "model.safetensors").read_bytes()[:100])
    shutil.copy(FSQ_MODEL / "model.onnx", own / "badweights" / "model.onnx")
    (own / "existing").mkdir()
    (own / "existing" / "keep.txt").write_text("an earlier output\n")
    (own / "calibration").write_text((REPO / "config" / "calibration.yaml").read_text())
    return shared


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file (sha256) and folder under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(root.rglob("*"))}


def run_row(row: Row, base: Path, shared: Path) -> dict:
    folder = base / "rows" / row.name
    folder.mkdir(parents=True)
    values = {"shared": str(shared), "fsq_model": str(FSQ_MODEL)}
    for key in ("fsq", "cnn", "emptydir", "badjson", "badweights", "existing", "calibration"):
        if f"{{own_{key}}}" in row.args:
            src = base / "own" / key
            (shutil.copytree if src.is_dir() else shutil.copy)(src, folder / key)
            values[f"own_{key}"] = str(folder / key)
    argv = shlex.split(row.args.format(**values))
    before = tree_hashes(folder)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("EDGE_INFERENCE_DEBUG", None)
    try:
        proc = subprocess.run([sys.executable, "-m", "edge_inference.cli", *argv], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=row.timeout, stdin=subprocess.DEVNULL)
        rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as err:  # e.g. a negative duration taken as "run forever"
        rc, stdout, stderr = f"still running after {row.timeout:g} s", str(err.stdout), str(err.stderr)
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "before": before,
            "after": tree_hashes(folder), "leftovers": [str(p) for p in folder.rglob("*.staging-*")]}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Starts every row (3 processes at a time) and hands out their futures, in table order."""
    base = tmp_path_factory.mktemp("cli_failures")
    shared = make_shared(base)
    shared_before = tree_hashes(shared)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {row.name: pool.submit(run_row, row, base, shared) for row in ROWS}
        yield {"rows": futures, "shared": shared, "shared_before": shared_before}
        for f in futures.values():
            f.cancel()


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_bad_input_fails_cleanly(table, row):
    r = table["rows"][row.name].result()
    where = f"\n$ edge-inference {row.args}\nstdout:\n{r['stdout'][-2000:]}\nstderr:\n{r['stderr'][-3000:]}"
    assert r["rc"] != 0, "accepted silently" + where
    if row.needs_torch and not HAS_TORCH:
        assert r["rc"] == 3 and "torch is not installed" in r["stderr"], f"exit {r['rc']}, expected 3" + where
    elif row.rc is not None:
        assert r["rc"] == row.rc, f"exit {r['rc']}, expected {row.rc}" + where
    assert "Traceback" not in r["stderr"] + r["stdout"], where
    lines = [line for line in r["stderr"].splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), "last stderr line is not `error: ...`" + where
    assert "internal error" not in lines[-1], "an expected failure reported as a bug" + where
    changed = {k for k in r["before"] if r["after"].get(k) != r["before"][k]}
    written = set(r["after"]) - set(r["before"]) - set(row.may_write)
    assert not changed, f"changed outputs {sorted(changed)}" + where
    assert not written, f"left outputs behind {sorted(written)}" + where
    assert not r["leftovers"], f"staging folders left {r['leftovers']}" + where


def test_shared_inputs_untouched(table):
    """After every row: the shared inputs were neither changed nor written beside (no staging left)."""
    for future in table["rows"].values():
        future.result()
    assert tree_hashes(table["shared"]) == table["shared_before"]


def test_every_command_has_a_row():
    """A new subcommand needs rows here: bad input of each kind it takes."""
    (subparsers,) = [a for a in cli.build_parser()._actions if a.dest == "command"]
    names = set(subparsers.choices)
    assert len(names) == len(cli.COMMAND_MODULES)
    covered = {r.args.split()[0] for r in ROWS}
    assert names - covered == set(), f"commands without a failure row: {sorted(names - covered)}"


def _parser_raising(exc: BaseException):
    def build():
        parser = cli.ArgumentParser(prog="edge-inference")
        parser.add_argument("--debug", action="store_true")
        sub = parser.add_subparsers(dest="command")
        p = sub.add_parser("boom")

        def func(args):
            raise exc
        p.set_defaults(func=func)
        return parser
    return build


def test_a_bug_is_one_line_with_a_debug_hint_and_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "build_parser", _parser_raising(ZeroDivisionError("division by zero")))
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: internal error: ZeroDivisionError: division by zero (a bug; run with --debug for the "
                   "traceback)"]
    assert cli.main(["--debug", "boom"]) == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert cli.main(["boom"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_expected_failures_exit_with_their_code(monkeypatch, capsys):
    from edge_inference.core.errors import CheckFailed, ToolMissing

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    for exc, code in ((FileNotFoundError(2, "No such file or directory", "x.yaml"), 2),
                      (CheckFailed("FAIL: gate"), 1), (ToolMissing("no SDK"), 3)):
        monkeypatch.setattr(cli, "build_parser", _parser_raising(exc))
        assert cli.main(["boom"]) == code
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")
