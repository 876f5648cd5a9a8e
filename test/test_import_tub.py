"""import-tub: Donkey Car tub v2 folders -> rosbag2, on a written tub and on the real tubs."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_inference.cli import main as cli_main
from edge_inference.core import bag_io
from edge_inference.datasets.donkey_tub import TubError, import_tubs, read_manifest

REAL_TUBS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "donkey"
BASE_MS = 1_639_716_037_542


def make_tub(root: Path, records: list[dict], deleted: list[int]) -> Path:
    """A tub v2 folder exactly as Donkey Car writes it (manifest lines, catalogs, JPEGs)."""
    (root / "images").mkdir(parents=True)
    catalog = root / "catalog_0.catalog"
    lines = []
    for rec in records:
        image = np.full((12, 16, 3), rec["_index"] * 10 % 256, np.uint8)  # RGB
        image[:, :8, 0] = 250
        cv2.imwrite(str(root / "images" / rec["cam/image_array"]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 100])
        lines.append(json.dumps(rec))
    catalog.write_text("\n".join(lines) + "\n")
    (root / "catalog_0.catalog_manifest").write_text(json.dumps({"path": catalog.name, "start_index": 0}))
    manifest = [
        json.dumps(["cam/image_array", "user/angle", "user/throttle", "user/mode", "range/cms"]),
        json.dumps(["image_array", "float", "float", "str", "float"]),
        json.dumps({}),
        json.dumps({"created_at": 0.0, "sessions": {}}),
        json.dumps({"paths": [catalog.name], "current_index": len(records), "max_len": 1000,
                    "deleted_indexes": deleted}),
    ]
    (root / "manifest.json").write_text("\n".join(manifest) + "\n")
    return root


def record(i: int, t_ms: int, session: str = "s0", with_range: bool = True) -> dict:
    rec = {"_index": i, "_session_id": session, "_timestamp_ms": t_ms, "cam/image_array": f"{i}_cam_image_array_.jpg",
           "user/angle": round(-1 + 0.25 * i, 3), "user/mode": "user", "user/throttle": 0.1 * i}
    if with_range:
        rec["range/cms"] = 40.0 + i
    return rec


def test_import_keeps_real_stamps_values_and_skips_deleted(tmp_path):
    records = [record(i, BASE_MS + 50 * i, with_range=(i != 3)) for i in range(6)]
    # A second session recorded earlier (clock of another day): catalog order != time order.
    records.append(record(6, BASE_MS - 10_000, session="s1"))
    tub = make_tub(tmp_path / "tub", records, deleted=[2])
    summary = import_tubs([tub], tmp_path / "bag", storage="sqlite3")
    assert (summary.records, summary.deleted, summary.out_of_order) == (6, 1, 1)
    msgs = list(bag_io.read_bag(tmp_path / "bag"))
    images = [m for m in msgs if m.topic == "/camera/image_raw"]
    commands = [m.msg for m in msgs if m.topic == "/vehicle/command"]
    ranges = [m.msg for m in msgs if m.topic == "/range"]
    kept = sorted([r for r in records if r["_index"] != 2], key=lambda r: r["_timestamp_ms"])
    assert [bag_io.stamp_ns(m.msg.header) for m in images] == [r["_timestamp_ms"] * 1_000_000 for r in kept]
    assert [m.log_ns for m in images] == [r["_timestamp_ms"] * 1_000_000 for r in kept]
    np.testing.assert_allclose([c.steering for c in commands], [r["user/angle"] for r in kept], atol=1e-6)
    np.testing.assert_allclose([c.throttle for c in commands], [r["user/throttle"] for r in kept], atol=1e-6)
    assert {c.source for c in commands} == {2}  # VehicleCommand.SOURCE_MANUAL
    with_range = [r for r in kept if "range/cms" in r]
    np.testing.assert_allclose([r.range for r in ranges], [r["range/cms"] / 100 for r in with_range], rtol=1e-6)
    rgb = bag_io.image_to_rgb(images[1].msg)  # record 0 (record 6 is earlier)
    assert rgb.shape == (12, 16, 3)
    assert rgb[0, 0, 0] > 240 and abs(int(rgb[0, 12, 1]) - 0) <= 3  # RGB order preserved through JPEG


def test_real_tub_imports_through_the_cli(tmp_path):
    tub = REAL_TUBS / "data_2"
    if not (tub / "manifest.json").is_file():
        pytest.skip(f"real Donkey tubs not present at {REAL_TUBS}")
    _, deleted = read_manifest(tub)
    catalog_lines = sum(len(p.read_text().splitlines()) for p in tub.glob("catalog_*.catalog"))
    assert cli_main(["import-tub", str(tub), "--out", str(tmp_path / "bag")]) == 0
    stats = bag_io.ReadStats()
    counts: dict[str, int] = {}
    last = 0
    for m in bag_io.read_bag(tmp_path / "bag", topics=["/camera/image_raw", "/vehicle/command"], stats=stats):
        counts[m.topic] = counts.get(m.topic, 0) + 1
        assert m.log_ns >= last
        last = m.log_ns
    expected = catalog_lines - len(deleted)
    assert counts == {"/camera/image_raw": expected, "/vehicle/command": expected}
    assert stats.topics["/range"] == "sensor_msgs/msg/Range"


def test_not_a_tub_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TubError, match="manifest.json"):
        read_manifest(tmp_path / "empty")
    assert cli_main(["import-tub", str(tmp_path / "empty"), "--out", str(tmp_path / "bag")]) == 2
    assert "not a Donkey Car tub" in capsys.readouterr().err


def test_bad_steering_throttle_are_skipped_and_counted_or_clamped(tmp_path):
    records = [record(i, BASE_MS + 50 * i) for i in range(5)]
    records[1]["user/angle"] = float("nan")
    records[2]["user/throttle"] = 7.5
    records[3]["user/angle"] = -1.25
    tub = make_tub(tmp_path / "tub", records, deleted=[])
    summary = import_tubs([tub], tmp_path / "skip")
    assert (summary.records, summary.bad_values, summary.clamped) == (2, 3, 0)
    steering = [m.msg.steering for m in bag_io.read_bag(tmp_path / "skip", topics=["/vehicle/command"])]
    assert steering == pytest.approx([records[0]["user/angle"], records[4]["user/angle"]])
    assert "3 with steering/throttle not finite or outside [-1, 1]" in summary.as_text()
    clamped = import_tubs([tub], tmp_path / "clamp", clamp=True)  # NaN is never clamped into a command
    assert (clamped.records, clamped.bad_values, clamped.clamped) == (4, 1, 2)
    commands = [m.msg for m in bag_io.read_bag(tmp_path / "clamp", topics=["/vehicle/command"])]
    assert [v for c in commands[1:3] for v in (c.steering, c.throttle)] == pytest.approx(
        [records[2]["user/angle"], 1.0, -1.0, records[3]["user/throttle"]])


def test_paths_leaving_the_tub_are_refused(tmp_path):
    secret = tmp_path / "secret.jpg"
    cv2.imwrite(str(secret), np.zeros((12, 16, 3), np.uint8))
    records = [record(i, BASE_MS + 50 * i) for i in range(3)]
    tub = make_tub(tmp_path / "tub", records, deleted=[])
    catalog = tub / "catalog_0.catalog"
    lines = [json.loads(line) for line in catalog.read_text().splitlines()]
    lines[0]["cam/image_array"] = "../../secret.jpg"
    lines[1]["cam/image_array"] = str(secret)
    catalog.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    summary = import_tubs([tub], tmp_path / "bag")
    assert (summary.records, summary.outside_tub) == (1, 2)
    manifest = tub / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"catalog_0.catalog"', '"../tub/catalog_0.catalog"'))
    with pytest.raises(TubError, match="outside the tub"):
        import_tubs([tub], tmp_path / "bag2")
    assert not (tmp_path / "bag2").exists()


def test_nothing_usable_writes_no_bag(tmp_path):
    records = [record(0, BASE_MS)]
    records[0]["user/angle"] = float("inf")
    tub = make_tub(tmp_path / "tub", records, deleted=[])
    with pytest.raises(TubError, match="no usable records"):
        import_tubs([tub], tmp_path / "bag")
    assert not (tmp_path / "bag").exists()
