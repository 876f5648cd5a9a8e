"""Donkey Car tub v2 folders -> one rosbag2 (the library behind `edge-inference import-tub`).

Lets Donkey Car users bring their recorded drives here: each record becomes a
camera Image (rgb8) and a manual VehicleCommand stamped with the record's real
time, plus a sensor_msgs/Range when the record has `range/cms`. Records listed
in the manifest's `deleted_indexes` are skipped, as the Donkey tools do.

A tub is input from elsewhere, so it is checked: steering/throttle must be finite and
in [-1, 1] (the VehicleCommand contract; out-of-range values are skipped and counted,
or clamped with ``clamp=True``, non-finite ones always skipped), and catalog and image
paths must stay inside the tub folder (``../`` or absolute paths are refused).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from edge_inference.core.errors import EdgeInferenceError
from edge_inference.core.files import remove_partial

IMAGE_TOPIC = "/camera/image_raw"
COMMAND_TOPIC = "/vehicle/command"
RANGE_TOPIC = "/range"


class TubError(EdgeInferenceError, ValueError):
    """A folder is not a readable Donkey Car tub v2."""


@dataclass
class TubRecord:
    index: int
    stamp_ns: int
    image_path: Path
    angle: float  # user/angle, [-1, 1]
    throttle: float  # user/throttle, [-1, 1]
    range_m: float | None  # range/cms / 100, when present
    session: str


@dataclass
class ImportSummary:
    records: int = 0
    deleted: int = 0
    missing_images: int = 0
    bad_records: int = 0
    bad_values: int = 0  # steering/throttle not finite or outside [-1, 1] (skipped)
    clamped: int = 0  # outside [-1, 1], clamped (clamp=True)
    outside_tub: int = 0  # image path leaves the tub folder (refused)
    out_of_order: int = 0  # catalog order differs from time order (e.g. sessions)
    sessions: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        clamped = f"; {self.clamped} clamped to [-1, 1]" if self.clamped else ""
        return (f"{self.records} records imported from {len(self.sessions)} sessions; skipped "
                f"{self.deleted} deleted, {self.missing_images} without image, "
                f"{self.bad_records} malformed, {self.bad_values} with steering/throttle not finite or outside "
                f"[-1, 1], {self.outside_tub} with an image path outside the tub{clamped}; "
                f"{self.out_of_order} out of time order (sorted)")


def inside(tub: Path, relative: str) -> Path | None:
    """``tub / relative`` if that stays inside the tub folder (no ``..``, not absolute), else None."""
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        return None
    path = tub / candidate
    try:
        path.resolve().relative_to(tub.resolve())  # a symlink inside the tub may point out
    except ValueError:
        return None
    return path


def read_manifest(tub: Path) -> tuple[list[str], set[int]]:
    """Catalog file names and deleted indexes from a tub v2 manifest.json.

    The manifest is JSON lines: inputs, types, metadata, manifest metadata,
    then the catalog info {paths, current_index, max_len, deleted_indexes}.
    """
    manifest = tub / "manifest.json"
    if not manifest.is_file():
        raise TubError(f"{tub}: no manifest.json, not a Donkey Car tub v2 folder")
    lines = [line for line in manifest.read_text().splitlines() if line.strip()]
    try:
        info = json.loads(lines[4])
        return list(info["paths"]), {int(i) for i in info.get("deleted_indexes", [])}
    except (IndexError, KeyError, ValueError, TypeError) as err:
        raise TubError(f"{manifest}: unexpected tub v2 manifest layout ({err})") from err


def _values_ok(record: TubRecord, summary: ImportSummary, clamp: bool) -> bool:
    """Steering/throttle finite and in [-1, 1] (or clamped there); a bad range reading is dropped."""
    values = (record.angle, record.throttle)
    if not all(math.isfinite(v) for v in values):
        summary.bad_values += 1
        return False
    if any(abs(v) > 1.0 for v in values):
        if not clamp:
            summary.bad_values += 1
            return False
        record.angle, record.throttle = (min(1.0, max(-1.0, v)) for v in values)
        summary.clamped += 1
    if record.range_m is not None and not (math.isfinite(record.range_m) and record.range_m >= 0):
        record.range_m = None
    return True


def read_tub(tub: Path, summary: ImportSummary, clamp: bool = False) -> Iterator[TubRecord]:
    """Records of one tub in catalog order, without deleted or malformed ones."""
    catalogs, deleted = read_manifest(tub)
    for name in catalogs:
        catalog = inside(tub, str(name))
        if catalog is None:
            raise TubError(f"{tub}: manifest lists catalog {name!r} outside the tub folder (refused)")
        if not catalog.is_file():
            raise TubError(f"{tub}: manifest lists missing catalog {name}")
        for line in catalog.read_text().splitlines():
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                index = int(raw["_index"])
                image = inside(tub / "images", str(raw["cam/image_array"]))
                record = TubRecord(
                    index=index,
                    stamp_ns=int(raw["_timestamp_ms"]) * 1_000_000,
                    image_path=image if image is not None else Path(),
                    angle=float(raw["user/angle"]),
                    throttle=float(raw["user/throttle"]),
                    range_m=float(raw["range/cms"]) / 100.0 if raw.get("range/cms") is not None else None,
                    session=str(raw.get("_session_id", "")),
                )
            except (KeyError, ValueError, TypeError) as err:
                summary.bad_records += 1
                print(f"warning: {catalog.name}: malformed record skipped ({err!r})", file=sys.stderr)
                continue
            if index in deleted:
                summary.deleted += 1
                continue
            if image is None:
                summary.outside_tub += 1
                print(f"warning: {catalog.name}: record {index}: image path {raw['cam/image_array']!r} leaves "
                      f"the tub folder (refused)", file=sys.stderr)
                continue
            if not _values_ok(record, summary, clamp):
                continue
            if not record.image_path.is_file():
                summary.missing_images += 1
                continue
            yield record


def load_rgb(path: Path) -> np.ndarray:
    """JPEG -> (H, W, 3) uint8 RGB."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise TubError(f"{path}: image cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def import_tubs(tubs: list[Path], out: Path, storage: str = "mcap",
                compress: bool = True, clamp: bool = False) -> ImportSummary:
    """Write all tubs into one bag in time order; returns what was imported/skipped.

    Raises TubError (and writes nothing) when no record is usable; a failure while
    writing removes the half-written bag.
    """
    from edge_inference.core import bag_io

    summary = ImportSummary()
    records: list[TubRecord] = []
    for tub in tubs:
        if not Path(tub).is_dir():
            raise TubError(f"tub folder not found ({tub})")
        records.extend(read_tub(Path(tub), summary, clamp))
    if not records:
        raise TubError(f"no usable records in {', '.join(str(t) for t in tubs)}: {summary.as_text()}; "
                       f"nothing written")
    summary.out_of_order = sum(1 for a, b in zip(records, records[1:]) if b.stamp_ns < a.stamp_ns)
    records.sort(key=lambda r: (r.stamp_ns, r.index))
    store = bag_io.make_typestore()
    command_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleCommand", store)
    range_cls = bag_io.msg_class("sensor_msgs/msg/Range", store)
    writer = bag_io.BagWriter(out, storage=storage, compress=compress, store=store)  # refuses an existing path
    try:
        _write_records(writer, records, summary, store, command_cls, range_cls)
    except BaseException:
        remove_partial(out)  # ours: BagWriter refused an existing path
        raise
    if summary.records == 0:
        remove_partial(out)
        raise TubError(f"no record could be imported: {summary.as_text()}; nothing written")
    return summary


def _write_records(writer, records: list[TubRecord], summary: ImportSummary, store, command_cls, range_cls) -> None:
    from edge_inference.core import bag_io

    with writer:
        for record in records:
            try:
                rgb = load_rgb(record.image_path)
            except TubError as err:
                summary.missing_images += 1
                print(f"warning: {err}", file=sys.stderr)
                continue
            ns = record.stamp_ns
            writer.write(IMAGE_TOPIC, bag_io.rgb_to_image(rgb, ns, "camera", store), ns)
            writer.write(COMMAND_TOPIC, command_cls(
                header=bag_io.make_header(ns, "base_link", store),
                steering=record.angle, throttle=record.throttle,
                source=command_cls.SOURCE_MANUAL), ns)
            if record.range_m is not None:
                writer.write(RANGE_TOPIC, range_cls(
                    header=bag_io.make_header(ns, "range", store),
                    # Sensor kind and limits are not in the tub; 0/inf say "unknown".
                    radiation_type=range_cls.ULTRASOUND, field_of_view=0.0,
                    min_range=0.0, max_range=math.inf, range=record.range_m, variance=0.0), ns)
            summary.records += 1
            if record.session not in summary.sessions:
                summary.sessions.append(record.session)
