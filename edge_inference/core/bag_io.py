"""rosbag2 reading and writing through `rosbags`, with or without a ROS install.

Why rosbags: recording, importing and evaluation must run on a laptop without ROS
and on the robot alike, and `ros2 bag info/play` must read the result. The
writers store the message definitions (MCAP schemas, sqlite3
`message_definitions`) so the bags are self-describing, custom types included.

Reading is robust: a bag from a crashed drive (no metadata.yaml, no MCAP footer,
a truncated chunk, a damaged sqlite file) is read as far as it is readable, and
every message that could not be used is counted by reason in `ReadStats`.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from struct import error as struct_error
from typing import Any, Iterable, Iterator

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.rosbag2.errors import ReaderError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore  # noqa: F401 (re-exported)
from rosbags.typesys.store import Typestore

from edge_inference.core.errors import EdgeInferenceError

MSG_PACKAGE = "edge_inference_msgs"
CUSTOM_TYPES = ("ActionChunk", "BehaviorState", "InferenceStats", "VehicleCommand", "VehicleState")

# Default recorded topics (absolute names, as stored in bags) -> message type.
TOPIC_TYPES: dict[str, str] = {
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "/imu/data_raw": "sensor_msgs/msg/Imu",
    "/imu/mag": "sensor_msgs/msg/MagneticField",
    "/vehicle/command": f"{MSG_PACKAGE}/msg/VehicleCommand",
    "/vehicle/state": f"{MSG_PACKAGE}/msg/VehicleState",
    "/policy/action_chunk": f"{MSG_PACKAGE}/msg/ActionChunk",
    "/policy/stats": f"{MSG_PACKAGE}/msg/InferenceStats",
    "/behavior/state": f"{MSG_PACKAGE}/msg/BehaviorState",
    "/behavior/stats": f"{MSG_PACKAGE}/msg/InferenceStats",
    "/behavior/label": f"{MSG_PACKAGE}/msg/BehaviorState",
    "/range": "sensor_msgs/msg/Range",  # e.g. Donkey range/cms, stored in m
}

STORAGE_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(EdgeInferenceError, RuntimeError):
    """A bag cannot be opened or written at all (as opposed to partly unreadable)."""


class UnsupportedImageEncodingError(EdgeInferenceError, ValueError):
    """An Image message uses an encoding the pipeline cannot turn into RGB."""

    def __init__(self, encoding: str):
        super().__init__(
            f"unsupported image encoding {encoding!r}; expected one of {sorted(_CHANNELS)}"
        )
        self.encoding = encoding


# --------------------------------------------------------------------------- types


def find_msg_dir() -> Path:
    """The `msg/` folder of edge_inference_msgs: in this repository or a ROS install."""
    repo_dir = Path(__file__).resolve().parents[2] / MSG_PACKAGE / "msg"
    if repo_dir.is_dir():
        return repo_dir
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory(MSG_PACKAGE)) / "msg"
    except (ImportError, LookupError) as err:
        raise BagError(
            f"cannot find {MSG_PACKAGE}/msg/*.msg (not in the source tree, no ROS install): {err}"
        ) from err
    return share


@functools.lru_cache(maxsize=1)
def make_typestore() -> Typestore:
    """ROS 2 Jazzy types plus our custom messages, parsed from their .msg files."""
    store = get_typestore(Stores.ROS2_JAZZY)
    msg_dir = find_msg_dir()
    types: dict[str, Any] = {}
    for name in CUSTOM_TYPES:
        path = msg_dir / f"{name}.msg"
        types.update(get_types_from_msg(path.read_text(), f"{MSG_PACKAGE}/msg/{name}"))
    store.register(types)
    return store


def msg_class(msgtype: str, store: Typestore | None = None) -> Any:
    """The rosbags dataclass for a message type name like 'sensor_msgs/msg/Image'."""
    store = store or make_typestore()
    try:
        return store.types[msgtype]
    except KeyError:
        raise BagError(f"unknown message type {msgtype!r}") from None


# --------------------------------------------------------------------------- time, headers


def ns_to_time(ns: int, store: Typestore | None = None) -> Any:
    """builtin_interfaces/Time from integer nanoseconds."""
    time_cls = msg_class("builtin_interfaces/msg/Time", store)
    return time_cls(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def stamp_ns(header: Any) -> int:
    """Integer nanoseconds of a header stamp (rosbags or rclpy message)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def make_header(ns: int, frame_id: str = "", store: Typestore | None = None) -> Any:
    header_cls = msg_class("std_msgs/msg/Header", store)
    return header_cls(stamp=ns_to_time(ns, store), frame_id=frame_id)


# --------------------------------------------------------------------------- images

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage (rosbags object) -> (H, W, 3) uint8 RGB.

    Raises UnsupportedImageEncodingError for encodings the policy cannot use and
    ValueError when the buffer does not match height/width/step or cannot be decoded.
    """
    if getattr(msg, "__msgtype__", "") == "sensor_msgs/msg/CompressedImage":
        return compressed_to_rgb(msg)
    encoding = str(msg.encoding)
    if encoding not in _CHANNELS:
        raise UnsupportedImageEncodingError(encoding)
    channels = _CHANNELS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if step < width * channels or data.size < height * step:
        raise ValueError(
            f"image buffer of {data.size} bytes does not fit {width}x{height} {encoding} "
            f"with step {step}"
        )
    rows = data[: height * step].reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels)  # (H, W, C)
    if encoding == "mono8":
        return np.repeat(pixels, 3, axis=2)
    if encoding.startswith("bgr"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png, as image_transport records it) -> (H, W, 3) uint8 RGB."""
    import cv2

    fmt = str(msg.format).lower()
    if not any(kind in fmt for kind in ("jpeg", "jpg", "png")):
        raise UnsupportedImageEncodingError(f"compressed {msg.format}")
    bgr = cv2.imdecode(np.asarray(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"compressed image ({msg.format}, {len(msg.data)} bytes) cannot be decoded")
    # image_transport writes "<raw encoding>; jpeg compressed <encoding fed to the encoder>";
    # only an encoder fed RGB leaves the channels in RGB order after imdecode.
    if fmt.rstrip().endswith("compressed rgb8"):
        return bgr
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_image(rgb: np.ndarray, ns: int, frame_id: str = "camera",
                 store: Typestore | None = None) -> Any:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rosbags object (rgb8)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    image_cls = msg_class("sensor_msgs/msg/Image", store)
    height, width, _ = rgb.shape
    return image_cls(
        header=make_header(ns, frame_id, store), height=height, width=width,
        encoding="rgb8", is_bigendian=0, step=width * 3,
        data=np.ascontiguousarray(rgb).reshape(-1),
    )


# --------------------------------------------------------------------------- writing


class BagWriter:
    """Write a rosbag2 (MCAP by default, or sqlite3) with message definitions.

    Use as a context manager; connections are added on first use of a topic.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", compress: bool = False,
                 store: Typestore | None = None):
        if storage not in STORAGE_PLUGINS:
            raise BagError(f"unknown storage {storage!r}; expected one of {sorted(STORAGE_PLUGINS)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; choose a new bag path")
        self.store = store or make_typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGE_PLUGINS[storage])
        if compress:
            # MCAP: zstd chunks (read natively by ros2 bag); sqlite3: per message.
            mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
            self._writer.set_compression(mode, CompressionFormat.ZSTD)
        self._connections: dict[str, Any] = {}
        self.counts: Counter[str] = Counter()

    def __enter__(self) -> "BagWriter":
        self._writer.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def close(self) -> None:
        if self._writer.storage is not None:
            self._writer.close()

    def _connection(self, topic: str, msgtype: str) -> Any:
        conn = self._connections.get(topic)
        if conn is None:
            msg_class(msgtype, self.store)  # clear error for unknown types
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store)
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagError(f"topic {topic} was {conn.msgtype}, cannot also write {msgtype}")
        return conn

    def write(self, topic: str, msg: Any, log_ns: int) -> None:
        """Serialize a rosbags message object and store it at log time `log_ns`."""
        msgtype = msg.__msgtype__
        self.write_raw(topic, msgtype, self.store.serialize_cdr(msg, msgtype), log_ns)

    def write_raw(self, topic: str, msgtype: str, cdr: bytes | memoryview, log_ns: int) -> None:
        """Store already CDR-serialized data (e.g. a raw DDS subscription)."""
        self._writer.write(self._connection(topic, msgtype), int(log_ns), cdr)
        self.counts[topic] += 1


# --------------------------------------------------------------------------- reading


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    log_ns: int  # time the recorder received it
    msg: Any  # deserialized rosbags object


@dataclass
class ReadStats:
    """What reading a bag yielded and what it had to skip, by reason."""

    path: str = ""
    storage: str = ""
    messages_read: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    warnings: list[str] = field(default_factory=list)
    topics: dict[str, str] = field(default_factory=dict)  # topic -> msgtype
    salvaged: bool = False  # the normal reader failed; records were scanned one by one
    truncated: bool = False  # reading stopped early at a damaged part

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def to_dict(self) -> dict:
        return {
            "path": self.path, "storage": self.storage,
            "messages_read": self.messages_read,
            "skipped": dict(sorted(self.skipped.items())),
            "warnings": list(self.warnings), "topics": dict(sorted(self.topics.items())),
            "salvaged": self.salvaged, "truncated": self.truncated,
        }


def read_bag(path: str | Path, topics: Iterable[str] | None = None,
             stats: ReadStats | None = None) -> Iterator[BagMessage]:
    """Yield deserialized messages in log-time order, skipping what is unreadable.

    `topics` limits what is deserialized (None: all). Problems are counted in
    `stats` (pass one in to inspect it after iterating). Raises BagError only when
    nothing at all can be read (path missing, not a bag).
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    stats.path = str(path)
    # Topic names are absolute in bags; accept "camera/image_raw" as well.
    wanted = None if topics is None else {t if t.startswith("/") else f"/{t}" for t in topics}
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    try:
        reader = AnyReader([path], default_typestore=make_typestore())
        reader.open()
    except (AnyReaderError, ReaderError, FileNotFoundError, TypesysError, OSError,
            sqlite3.DatabaseError) as err:
        stats.salvaged = True
        stats.warn(f"bag could not be opened normally ({err}); scanning its storage file")
        yield from _salvage(path, wanted, stats)
        return
    with contextlib.closing(reader):
        stats.storage = _storage_name(path)
        connections = []
        stores: dict[str, Typestore] = {}  # msgtype -> store that can decode it
        for conn in reader.connections:
            stats.topics[conn.topic] = conn.msgtype
            if conn.msgtype in reader.typestore.types:
                stores[conn.msgtype] = reader.typestore  # the definition stored in the bag
            elif conn.msgtype in make_typestore().types:
                stores[conn.msgtype] = make_typestore()  # bag without definitions (e.g. Humble sqlite3)
            else:  # counted even when not requested: the report lists every unusable topic
                stats.skipped["unknown_type"] += conn.msgcount
                stats.warn(f"topic {conn.topic}: unknown message type {conn.msgtype} (no definition)")
                continue
            if wanted is None or conn.topic in wanted:
                connections.append(conn)
        if not connections:
            return
        iterator = reader.messages(connections=connections)
        while True:
            try:
                conn, log_ns, raw = next(iterator)
            except StopIteration:
                break
            except (ReaderError, AnyReaderError, sqlite3.DatabaseError, ValueError, OSError) as err:
                stats.truncated = True
                stats.warn(f"stopped reading at a damaged part of the bag: {err}")
                break
            msg = _deserialize(stores[conn.msgtype], raw, conn.msgtype, conn.topic, stats)
            if msg is not None:
                stats.messages_read += 1
                yield BagMessage(conn.topic, conn.msgtype, log_ns, msg)


def _storage_name(path: Path) -> str:
    files = [path] if path.is_file() else list(path.iterdir())
    suffixes = {f.suffix for f in files}
    return "mcap" if ".mcap" in suffixes else "sqlite3" if ".db3" in suffixes else "unknown"


def _deserialize(store: Typestore, raw: bytes, msgtype: str, topic: str,
                 stats: ReadStats) -> Any | None:
    try:
        return store.deserialize_cdr(raw, msgtype)
    except (SerdeError, AnyReaderError, ValueError, IndexError, KeyError, struct_error) as err:
        stats.skipped["undecodable"] += 1
        stats.warn(f"topic {topic}: a {msgtype} message could not be decoded ({err})")
        return None


# --------------------------------------------------------------------------- salvage


def _salvage(path: Path, wanted: set[str] | None, stats: ReadStats) -> Iterator[BagMessage]:
    """Read a damaged bag record by record; order the readable messages by log time."""
    files = [path] if path.is_file() else sorted(
        f for f in path.iterdir() if f.suffix in (".mcap", ".db3"))
    if not files:
        raise BagError(f"{path} holds no .mcap or .db3 storage file; not a rosbag2")
    records: list[tuple[int, str, str, bytes]] = []  # (log_ns, topic, msgtype, cdr)
    definitions: dict[str, tuple[str, str]] = {}  # msgtype -> (encoding, text)
    for file in files:
        if file.suffix == ".mcap":
            stats.storage = "mcap"
            _scan_mcap(file, records, definitions, stats)
        else:
            stats.storage = "sqlite3"
            _scan_sqlite(file, records, definitions, stats)
    store = _salvage_typestore(definitions, stats)
    records.sort(key=lambda r: r[0])
    for _, topic, msgtype, _ in records:
        stats.topics.setdefault(topic, msgtype)
    for log_ns, topic, msgtype, raw in records:
        if msgtype not in store.types:  # counted even when not requested, as in read_bag
            stats.skipped["unknown_type"] += 1
            stats.warn(f"topic {topic}: unknown message type {msgtype} (no definition)")
            continue
        if wanted is not None and topic not in wanted:
            continue
        msg = _deserialize(store, raw, msgtype, topic, stats)
        if msg is not None:
            stats.messages_read += 1
            yield BagMessage(topic, msgtype, log_ns, msg)


def _salvage_typestore(definitions: dict[str, tuple[str, str]], stats: ReadStats) -> Typestore:
    """Our typestore, extended with the definitions stored in the bag itself."""
    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(make_typestore().fielddefs)
    for msgtype, (encoding, text) in definitions.items():
        if msgtype in store.types or encoding != "ros2msg" or not text:
            continue
        try:
            store.register(get_types_from_msg(text, msgtype))
        except (TypesysError, ValueError) as err:
            stats.warn(f"stored definition of {msgtype} is unusable: {err}")
    return store


def _scan_mcap(file: Path, records: list, definitions: dict, stats: ReadStats) -> None:
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    schemas: dict[int, Any] = {}
    channels: dict[int, tuple[str, str]] = {}
    with file.open("rb") as stream:
        reader = StreamReader(stream, skip_magic=False)
        try:
            for record in reader.records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                    definitions.setdefault(record.name, (record.encoding, record.data.decode()))
                elif isinstance(record, Channel):
                    schema = schemas.get(record.schema_id)
                    channels[record.id] = (record.topic, schema.name if schema else "")
                elif isinstance(record, Message):
                    if record.channel_id not in channels:
                        stats.skipped["unknown_channel"] += 1
                        continue
                    topic, msgtype = channels[record.channel_id]
                    records.append((record.log_time, topic, msgtype, bytes(record.data)))
        except (McapError, ValueError, EOFError, OSError, IndexError, struct_error) as err:
            stats.truncated = True
            stats.warn(f"{file.name}: stopped at a damaged or truncated record ({type(err).__name__}: {err})")


def _scan_sqlite(file: Path, records: list, definitions: dict, stats: ReadStats) -> None:
    try:
        db = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise BagError(f"{file}: not a readable sqlite3 bag: {err}") from err
    try:
        try:
            topic_rows = db.execute("SELECT id, name, type FROM topics").fetchall()
        except sqlite3.Error as err:
            raise BagError(f"{file}: no readable topics table: {err}") from err
        topics = {row[0]: (row[1], row[2]) for row in topic_rows}
        try:
            for msgtype, encoding, text in db.execute(
                    "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions"):
                definitions.setdefault(msgtype, (encoding, text))
        except sqlite3.Error:
            stats.warn(f"{file.name}: no message_definitions table (bag from before Iron)")
        cursor = db.execute("SELECT topic_id, timestamp, data FROM messages ORDER BY id")
        while True:
            try:
                row = cursor.fetchone()
            except sqlite3.Error as err:
                stats.truncated = True
                stats.warn(f"{file.name}: stopped at a damaged database page ({err})")
                break
            if row is None:
                break
            topic_id, log_ns, data = row
            if topic_id not in topics:
                stats.skipped["unknown_channel"] += 1
                continue
            topic, msgtype = topics[topic_id]
            records.append((int(log_ns), topic, msgtype, bytes(data)))
    except sqlite3.Error as err:
        stats.truncated = True
        stats.warn(f"{file.name}: damaged database ({err})")
    finally:
        db.close()
