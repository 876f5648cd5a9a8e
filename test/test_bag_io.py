"""bag_io: real rosbag2 files written with rosbags, MCAP and sqlite3, intact and damaged."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from edge_inference.core import bag_io
from edge_inference.core.bag_io import BagError, BagWriter, ReadStats, read_bag

N_FRAMES = 40
FRAME_NS = 50_000_000  # 20 Hz
T0 = 1_700_000_000_000_000_000


def _frame(i: int, shape=(24, 32)) -> np.ndarray:
    rgb = np.zeros((*shape, 3), np.uint8)
    rgb[..., 0] = i % 256
    rgb[..., 1] = 255 - i % 256
    rgb[:, : i % 32, 2] = 200
    return rgb


def write_drive(path: Path, storage: str, n: int = N_FRAMES, shape=(24, 32)) -> None:
    """Images, teleop commands, states, IMU and behavior labels, 20 Hz."""
    store = bag_io.make_typestore()
    cmd_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleCommand")
    state_cls = bag_io.msg_class("edge_inference_msgs/msg/VehicleState")
    imu_cls = bag_io.msg_class("sensor_msgs/msg/Imu")
    vec = bag_io.msg_class("geometry_msgs/msg/Vector3")
    quat = bag_io.msg_class("geometry_msgs/msg/Quaternion")
    label_cls = bag_io.msg_class("edge_inference_msgs/msg/BehaviorState")
    with BagWriter(path, storage=storage, store=store) as w:
        for i in range(n):
            t = T0 + i * FRAME_NS
            w.write("/camera/image_raw", bag_io.rgb_to_image(_frame(i, shape), t), t)
            w.write("/vehicle/command", cmd_cls(header=bag_io.make_header(t), steering=i / n, throttle=0.25,
                                                source=cmd_cls.SOURCE_MANUAL), t + 1)
            w.write("/vehicle/state", state_cls(
                header=bag_io.make_header(t), steering_us=1500 + i, throttle_us=1500, steering=i / n,
                throttle=0.25, mode=state_cls.MODE_MANUAL, link=state_cls.LINK_UP, armed=True,
                failsafe_flags=0, rc_steering_us=0, rc_throttle_us=0, rc_mode_us=0, loop_time_us=100.0,
                rtt_ms=2.0), t + 2)
            w.write("/imu/data_raw", imu_cls(
                header=bag_io.make_header(t), orientation=quat(x=0.0, y=0.0, z=0.0, w=1.0),
                orientation_covariance=np.full(9, -1.0), angular_velocity=vec(x=0.0, y=0.0, z=0.1 * i),
                angular_velocity_covariance=np.zeros(9), linear_acceleration=vec(x=0.0, y=0.0, z=9.8),
                linear_acceleration_covariance=np.zeros(9)), t + 3)
            w.write("/behavior/label", label_cls(
                header=bag_io.make_header(t), class_id=i % 3, label=f"c{i % 3}", confidence=1.0,
                probabilities=np.zeros(0, np.float32), class_names=[], fsq_code=-1, latency_ms=0.0), t + 4)


def storage_file(bag: Path) -> Path:
    return next(f for f in bag.iterdir() if f.suffix in (".mcap", ".db3"))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_keeps_values_order_and_definitions(tmp_path, storage):
    bag = tmp_path / "drive"
    write_drive(bag, storage)
    stats = ReadStats()
    msgs = list(read_bag(bag, stats=stats))
    assert stats.messages_read == len(msgs) == 5 * N_FRAMES
    assert stats.storage == storage and not stats.salvaged and not stats.truncated
    assert [m.log_ns for m in msgs] == sorted(m.log_ns for m in msgs)
    images = [m for m in msgs if m.topic == "/camera/image_raw"]
    for i, m in enumerate(images):
        np.testing.assert_array_equal(bag_io.image_to_rgb(m.msg), _frame(i))
        assert bag_io.stamp_ns(m.msg.header) == T0 + i * FRAME_NS
    commands = [m.msg for m in msgs if m.topic == "/vehicle/command"]
    assert [c.source for c in commands] == [2] * N_FRAMES
    np.testing.assert_allclose([c.steering for c in commands], np.arange(N_FRAMES) / N_FRAMES, atol=1e-6)
    labels = [m.msg for m in msgs if m.topic == "/behavior/label"]
    assert [lb.label for lb in labels[:4]] == ["c0", "c1", "c2", "c0"]
    # The custom types' definitions travel with the bag: a reader without our
    # typestore (like `ros2 bag` on another machine) can decode them.
    with AnyReader([bag]) as plain:
        conn = next(c for c in plain.connections if c.topic == "/vehicle/state")
        assert "rc_steering_us" in conn.msgdef.data
        _, _, raw = next(plain.messages(connections=[conn]))
        assert plain.deserialize(raw, conn.msgtype).steering_us == 1500


def test_topic_filter_reads_only_requested_topics(tmp_path):
    bag = tmp_path / "drive"
    write_drive(bag, "mcap", n=5)
    stats = ReadStats()
    msgs = list(read_bag(bag, topics=["vehicle/command"], stats=stats))  # relative name as in node params
    assert {m.topic for m in msgs} == {"/vehicle/command"} and len(msgs) == 5
    assert "/camera/image_raw" in stats.topics  # still listed as present


def test_truncated_mcap_without_metadata_is_read_as_far_as_possible(tmp_path):
    bag = tmp_path / "crashed"
    write_drive(bag, "mcap", n=100, shape=(96, 128))  # 3.7 MB of images: several 1 MiB chunks
    total = 5 * 100
    data = storage_file(bag).read_bytes()
    storage_file(bag).write_bytes(data[: int(len(data) * 0.7)])  # recorder killed mid-write
    (bag / "metadata.yaml").unlink()
    stats = ReadStats()
    msgs = list(read_bag(bag, stats=stats))
    assert stats.salvaged and stats.truncated
    assert 0 < len(msgs) < total
    assert any("truncated" in w or "damaged" in w for w in stats.warnings)
    stamps = [bag_io.stamp_ns(m.msg.header) for m in msgs if m.topic == "/camera/image_raw"]
    assert stamps == [T0 + i * FRAME_NS for i in range(len(stamps))]  # a clean prefix of the drive


def test_truncated_mcap_with_metadata_still_reads_prefix(tmp_path):
    bag = tmp_path / "cut"
    write_drive(bag, "mcap", n=100, shape=(96, 128))
    data = storage_file(bag).read_bytes()
    storage_file(bag).write_bytes(data[: len(data) // 2])
    stats = ReadStats()
    msgs = list(read_bag(bag, stats=stats))
    assert stats.truncated and 0 < len(msgs) < 500


def test_sqlite_bag_without_metadata_is_salvaged_completely(tmp_path):
    bag = tmp_path / "crashed"
    write_drive(bag, "sqlite3", n=10)
    (bag / "metadata.yaml").unlink()
    stats = ReadStats()
    msgs = list(read_bag(bag, stats=stats))
    assert stats.salvaged and not stats.truncated
    assert len(msgs) == 50 and stats.skipped == {}


def test_sqlite_bag_with_damaged_pages_gives_clear_result(tmp_path):
    bag = tmp_path / "damaged"
    write_drive(bag, "sqlite3", n=60)
    db = storage_file(bag)
    data = bytearray(db.read_bytes())
    start = len(data) // 2
    data[start: start + 8192] = b"\xff" * 8192  # garbage over some message pages
    db.write_bytes(bytes(data))
    stats = ReadStats()
    msgs = list(read_bag(bag, stats=stats))
    assert stats.salvaged and stats.truncated  # damage is reported, not hidden
    assert 0 < len(msgs) < 300  # messages before the damaged pages are still usable
    assert any("damaged database page" in w for w in stats.warnings)


def test_sqlite_bag_with_damaged_schema_raises_naming_the_file(tmp_path):
    bag = tmp_path / "wrecked"
    write_drive(bag, "sqlite3", n=5)
    db = storage_file(bag)
    db.write_bytes(db.read_bytes()[:3000])  # cut inside the schema pages
    (bag / "metadata.yaml").unlink()
    with pytest.raises(BagError, match=db.name):
        list(read_bag(bag))


def test_unknown_types_are_skipped_and_counted(tmp_path):
    bag = tmp_path / "vendor"
    store = bag_io.make_typestore()
    vendor = bag_io.get_types_from_msg("float64 value\nstring note", "vendor_msgs/msg/Blob")
    store_with_vendor = bag_io.get_typestore(bag_io.Stores.ROS2_JAZZY)
    store_with_vendor.register({**store.fielddefs, **vendor})
    blob_cls = store_with_vendor.types["vendor_msgs/msg/Blob"]
    cmd_cls = store_with_vendor.types["edge_inference_msgs/msg/VehicleCommand"]
    with BagWriter(bag, storage="sqlite3", store=store_with_vendor) as w:
        for i in range(3):
            w.write("/vendor/blob", blob_cls(value=float(i), note="x"), T0 + i)
            w.write("/vehicle/command", cmd_cls(header=bag_io.make_header(T0 + i), steering=0.1, throttle=0.0,
                                                source=2), T0 + i)
    # Drop the stored definitions, as in a bag recorded before ROS 2 Iron.
    with sqlite3.connect(storage_file(bag)) as db:
        db.execute("DELETE FROM message_definitions")
    stats = ReadStats()
    msgs = list(read_bag(bag, stats=stats))
    assert [m.topic for m in msgs] == ["/vehicle/command"] * 3  # ours decode from our own definitions
    assert stats.skipped["unknown_type"] == 3
    assert any("vendor_msgs/msg/Blob" in w for w in stats.warnings)


def test_missing_or_non_bag_paths_raise_clear_errors(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        list(read_bag(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2"):
        list(read_bag(tmp_path / "empty"))


def test_writer_refuses_existing_path_and_unknown_types(tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagError, match="exists"):
        BagWriter(tmp_path / "exists")
    with pytest.raises(BagError, match="unknown storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")
    with BagWriter(tmp_path / "y") as w:
        with pytest.raises(BagError, match="unknown message type"):
            w.write_raw("/t", "nobody_msgs/msg/Thing", b"\x00\x01\x00\x00", T0)


def _image(encoding: str, width: int, height: int, step: int, data: np.ndarray):
    cls = bag_io.msg_class("sensor_msgs/msg/Image")
    return cls(header=bag_io.make_header(T0), height=height, width=width, encoding=encoding, is_bigendian=0,
               step=step, data=data.astype(np.uint8).reshape(-1))


def test_image_to_rgb_handles_encodings_and_row_padding():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.zeros((2, 12), np.uint8)  # step 12 > 3 px * 3 bytes
    padded[:, :9] = rgb.reshape(2, 9)
    np.testing.assert_array_equal(bag_io.image_to_rgb(_image("rgb8", 3, 2, 12, padded)), rgb)
    bgr = rgb[:, :, ::-1]
    np.testing.assert_array_equal(bag_io.image_to_rgb(_image("bgr8", 3, 2, 9, bgr)), rgb)
    mono = np.array([[10, 20, 30], [40, 50, 60]], np.uint8)
    out = bag_io.image_to_rgb(_image("mono8", 3, 2, 3, mono))
    np.testing.assert_array_equal(out[..., 0], mono)
    np.testing.assert_array_equal(out[..., 2], mono)
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(bag_io.image_to_rgb(_image("rgba8", 3, 2, 12, rgba)), rgb)


def test_image_to_rgb_rejects_unusable_encodings_and_short_buffers():
    with pytest.raises(bag_io.UnsupportedImageEncodingError, match="yuv422"):
        bag_io.image_to_rgb(_image("yuv422", 2, 2, 4, np.zeros(8)))
    with pytest.raises(ValueError, match="does not fit"):
        bag_io.image_to_rgb(_image("rgb8", 4, 4, 12, np.zeros(20)))
    with pytest.raises(ValueError, match="uint8 RGB"):
        bag_io.rgb_to_image(np.zeros((4, 4), np.uint8), T0)


def test_mcap_bags_decode_with_the_reference_mcap_ros2_reader(tmp_path):
    """An independent decoder (mcap-ros2-support, as in Foxglove) reads our MCAP schemas and data."""
    reader = pytest.importorskip("mcap_ros2.reader", reason="mcap-ros2-support is in requirements/dev.txt")
    bag = tmp_path / "drive"
    write_drive(bag, "mcap", n=6)
    decoded = list(reader.read_ros2_messages(str(storage_file(bag))))
    assert len(decoded) == 30
    state = next(m.ros_msg for m in decoded if m.channel.topic == "/vehicle/state")
    assert (state.steering_us, state.mode) == (1500, 2)
    image = next(m.ros_msg for m in decoded if m.channel.topic == "/camera/image_raw")
    assert (image.encoding, image.width, image.height) == ("rgb8", 32, 24)
    assert bytes(image.data)[:3] == bytes(_frame(0)[0, 0])


def test_compressed_images_as_image_transport_records_them():
    import cv2

    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 220  # red
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cls = bag_io.msg_class("sensor_msgs/msg/CompressedImage")
    msg = cls(header=bag_io.make_header(T0), format="rgb8; png compressed bgr8", data=png.reshape(-1))
    np.testing.assert_array_equal(bag_io.image_to_rgb(msg), rgb)
    with pytest.raises(bag_io.UnsupportedImageEncodingError, match="theora"):
        bag_io.image_to_rgb(cls(header=bag_io.make_header(T0), format="theora", data=np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="cannot be decoded"):
        bag_io.image_to_rgb(cls(header=bag_io.make_header(T0), format="jpeg", data=np.zeros(9, np.uint8)))
