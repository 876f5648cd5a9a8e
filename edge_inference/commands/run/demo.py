"""`edge-inference demo` (`make demo`): the simulated rover driving itself with trained models.

The full graph runs in closed loop on real DDS in this process: camera_node (sim
source) -> policy_node (ACT) -> pwm_bridge_node -> serial pty -> sim_node (the
board + bicycle dynamics + IMU) -> sim/pose -> camera; behavior_node classifies
the simulated IMU with the FSQ model and is compared with the ground-truth label.
It drives the policy on the CPU backend at int8 and at fp32, then the expert for
reference, printing live rates/latencies and finally the score table.

Models (nothing is downloaded), looked up in ``--models DIR`` (default
``artifacts/demo_models``), then in ``models/sim_demo`` (small, checked in):
  policy: ``act/``, a LeRobot-compatible ACT (ResNet-18 backbone, the smallest LeRobot
  allows; 48x64 input, D=128, 2 encoder / 1 decoder layers, chunk 16). Its weights
  (45 MB fp32, 12 MB int8) are too large to check in, so a fresh clone builds it once
  from simulated expert demonstrations (gen-demos -> train-act -> export -> quantize,
  about 3 min on 2 cores) and caches it. Where torch is missing (the robot), ``auto``
  falls back to ``policy_cnn/``: a small CNN chunk policy with ACT's I/O contract, kept
  as a yardstick (``--policy cnn``). fsq: ``fsq/`` (checked in).
``--retrain`` rebuilds the models. Exit 0 when the int8 policy completed the laps
without leaving the track.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from edge_inference.commands.arg_types import non_negative_float, positive_int
from edge_inference.core.errors import CheckFailed, UsageError
from edge_inference.core.files import write_text_atomic
from edge_inference.sim.closed_loop import EXPERT, ClosedLoop, print_table, score_dict
from edge_inference.sim.demo_models import DEFAULT_CACHE, act_tools_available, build_act, build_fsq, build_policy_cnn, find_model

RUNS = (("int8", "onnxruntime-int8"), ("fp32", "onnxruntime"))


def register(sub) -> None:
    p = sub.add_parser("demo", help="the simulated rover in closed loop with trained models (CPU int8/fp32 + expert)",
                       description=__doc__)
    p.add_argument("--duration", type=non_negative_float, default=0.0,
                   help="cap per driving run in s (0: until the laps are done, at most 40 s per lap + 20 s)")
    p.add_argument("--laps", type=positive_int, default=1)
    p.add_argument("--models", default=str(DEFAULT_CACHE), help="model cache directory (act/, policy_cnn/, fsq/)")
    p.add_argument("--policy", default="auto", choices=["auto", "act", "cnn", "heuristic"],
                   help="auto: the ACT (cached, else built here when torch is installed), else the CNN "
                        "chunk policy")
    p.add_argument("--retrain", action="store_true", help="rebuild the models into --models even if present")
    p.add_argument("--skip-fp32", action="store_true", help="drive only int8 (and the expert)")
    p.add_argument("--skip-expert", action="store_true")
    p.add_argument("--json", default="artifacts/demo_score.json", help="write the score table here")
    p.add_argument("--backend", default="cpu", choices=["cpu"], help="only the CPU backend is simulated")
    p.add_argument("--board", default="auto", choices=["auto", "firmware", "emulator"],
                   help="simulated board: the real firmware in simavr (auto: when its Debian packages are "
                        "installed) or the Python board emulator")
    p.set_defaults(func=run)


def resolve_policy(cache: Path, choice: str, retrain: bool) -> Path | None:
    if choice == "heuristic":
        return None
    if choice in ("auto", "act"):
        act = None if retrain else find_model(cache, "act")
        if act is not None:
            return act
        if act_tools_available():
            return build_act(cache)
        if choice == "act":
            raise UsageError("--policy act: no ACT cached, and building one needs torch "
                             "(pip install -r requirements/dev.txt)")
        print("demo: torch is not installed, so the ACT cannot be built here: driving the CNN chunk policy",
              flush=True)
    cnn = None if retrain else find_model(cache, "policy_cnn")
    return cnn if cnn is not None else build_policy_cnn(cache)


def resolve_models(cache: Path, policy: str, retrain: bool) -> tuple[Path | None, Path, float]:
    """(policy dir, or None for the heuristic; FSQ dir; seconds spent building)."""
    t0 = time.monotonic()
    fsq = None if retrain else find_model(cache, "fsq")
    if fsq is None:
        fsq = build_fsq(cache)
    act = resolve_policy(cache, policy, retrain)
    shutil.rmtree(cache / "data", ignore_errors=True)  # demonstrations are large; the models are what we keep
    took = time.monotonic() - t0
    if took > 1.0:
        print(f"demo: models built in {took / 60:.1f} min -> {cache}", flush=True)
    return act, fsq, took


def describe_policy(path: Path | None) -> str:
    if path is None:
        return "the heuristic (NOT a trained model)"
    cfg = path / "config.json"
    arch = json.loads(cfg.read_text()).get("architecture", "act") if cfg.is_file() else "act"
    return f"{path} ({'ACT' if arch == 'act' else 'CNN chunk policy, ACT I/O contract'})"


def _live(name: str):
    last = [0.0, 0]

    def tick(loop: ClosedLoop) -> None:
        now = loop.elapsed()
        if now - last[0] < 2.0:
            return
        st, r = loop.stats, loop.scorer.result()
        rate = (st.commands - last[1]) / (now - last[0])
        last[0], last[1] = now, st.commands
        lat = st.inference_latency_ms[-60:]
        p50 = sorted(lat)[len(lat) // 2] if lat else float("nan")
        pwm = "-"
        if loop.graph.nodes:
            sim = next((n for n in loop.graph.nodes if n.get_name() == "sim_node"), None)
            if sim is not None and sim.board is not None:
                pwm = "{}/{}".format(*sim.board.applied_us())
        track_len = loop.scorer.track.length
        print(f"[{name:>6} {now:5.1f}s] lap {r.laps_completed} {r.distance_m % track_len:5.1f}/{track_len:.1f} m  "
              f"cte {r.mean_cte_m:.3f}/{r.max_cte_m:.3f} m  off-track {r.off_track_events}  cmd {rate:4.1f} Hz  "
              f"chunk p50 {p50:5.1f} ms  PWM {pwm}  behavior {st.last_behavior} (true {st.true_behavior})",
              flush=True)
    return tick


def choose_board(choice: str) -> str:
    if choice != "auto":
        return choice
    from edge_inference.devices.firmware_sim import missing_packages
    missing = missing_packages()
    if missing:
        print(f"demo: board = Python emulator (the firmware in simavr needs Debian packages {missing})", flush=True)
        return "emulator"
    return "firmware"


def drive(name: str, model: str, backend: str, fsq_dir: Path | None, laps: int, timeout_s: float,
          board: str = "emulator") -> dict:
    print(f"\n--- {name}: {'expert (pure pursuit on the true pose)' if model == EXPERT else f'{model} on {backend}'}",
          flush=True)
    loop = ClosedLoop(model, backend, with_behavior=fsq_dir is not None,
                      behavior_model=str(fsq_dir) if fsq_dir else "", behavior_backend="onnxruntime-int8",
                      board=board)
    try:
        reason = loop.drive(laps, timeout_s, _live(name))
        st = loop.stats
        behavior_acc = round(st.behavior_hits / st.behaviors, 3) if st.behaviors else None
        return score_dict(loop.scorer.result(), st, loop.elapsed(), run=name, model=model,
                          backend=backend if model != EXPERT else EXPERT, board=board, stop_reason=reason,
                          behavior_agreement=behavior_acc)
    finally:
        loop.close()


def run(args) -> int:
    act, fsq, build_s = resolve_models(Path(args.models), args.policy, args.retrain)
    print(f"demo: policy {describe_policy(act)}; FSQ behavior model {fsq}", flush=True)
    runs = RUNS if act is not None else (("heuristic", "heuristic"),)
    board = choose_board(args.board)
    print(f"demo: loop = camera_node (sim) -> policy_node -> pwm_bridge_node -> pty -> {board} board -> "
          "sim_node dynamics", flush=True)
    timeout = args.duration if args.duration > 0 else 40.0 * args.laps + 20.0
    rows = []
    t0 = time.monotonic()
    try:
        for name, backend in runs:
            if name == "fp32" and args.skip_fp32:
                continue
            rows.append(drive(name, str(act) if act else "", backend, fsq, args.laps, timeout, board))
        if not args.skip_expert:
            rows.append(drive("expert", EXPERT, EXPERT, None, args.laps, timeout, board))
    except KeyboardInterrupt:
        print("\ndemo: interrupted", flush=True)
    for r in rows:
        r["backend"] = f"{r['run']} {r['backend']}"
    print_table(rows, "demo: closed-loop score (CPU backend; expert = reference)")
    for r in rows:
        agree = r["behavior_agreement"]
        agree_text = "-" if agree is None else f"{100 * agree:.0f}%"
        print(f"  {r['run']:>6}: stop: {r['stop_reason']}; behavior label agreed with the ground truth {agree_text}")
    summary = {"runs": rows, "policy": describe_policy(act), "fsq": str(fsq), "build_seconds": round(build_s, 1),
               "total_seconds": round(time.monotonic() - t0, 1)}
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=2))
    int8 = next((r for r in rows if r["run"] in ("int8", "heuristic")), None)
    # OK only when what was asked for happened: every lap driven, none off the track.
    ok = int8 is not None and int8["laps_completed"] >= args.laps >= 1 and int8["off_track_events"] == 0
    who = "the int8 CPU policy" if act else "the heuristic policy (NOT a trained model)"
    laps = "no run" if int8 is None else f"{int8['laps_completed']} of {args.laps} lap(s)"
    print("result: " + (f"OK: {who} completed {laps} without leaving the track" if ok else
                        f"FAILED: {who} did not complete the lap(s) cleanly ({laps})"))
    if not ok:
        raise CheckFailed(f"FAIL: {who} did not complete the lap(s) cleanly ({laps})")
    return 0
