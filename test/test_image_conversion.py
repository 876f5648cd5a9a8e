"""Image <-> numpy conversion (fallback when cv_bridge is missing)."""
import numpy as np
import pytest
from sensor_msgs.msg import Image

from edge_inference.ros.image_conversion import UnsupportedEncodingError, image_msg_to_rgb, rgb_to_image_msg


def _rgb(h=4, w=5):
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_round_trip(encoding):
    rgb = _rgb()
    msg = rgb_to_image_msg(rgb, encoding=encoding)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (4, 5, 15, encoding)
    assert np.array_equal(image_msg_to_rgb(msg), rgb)


def test_bgr_bytes_are_swapped_on_the_wire():
    rgb = _rgb()
    msg = rgb_to_image_msg(rgb, encoding="bgr8")
    wire = np.frombuffer(bytes(msg.data), np.uint8).reshape(4, 5, 3)
    assert np.array_equal(wire, rgb[:, :, ::-1])


def test_padded_rows_mono_and_bgra():
    rgb = _rgb(2, 3)
    msg = Image(height=2, width=3, encoding="rgb8", step=12)
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    msg.data = padded.tobytes()
    assert np.array_equal(image_msg_to_rgb(msg), rgb)
    mono = Image(height=2, width=2, encoding="mono8", step=2, data=bytes([1, 2, 3, 4]))
    assert image_msg_to_rgb(mono)[1, 1].tolist() == [4, 4, 4]
    bgra = Image(height=1, width=1, encoding="bgra8", step=4, data=bytes([10, 20, 30, 255]))
    assert image_msg_to_rgb(bgra)[0, 0].tolist() == [30, 20, 10]


def test_bad_inputs_have_clear_errors():
    with pytest.raises(UnsupportedEncodingError, match="16UC1"):
        image_msg_to_rgb(Image(height=1, width=1, encoding="16UC1", step=2, data=bytes(2)))
    with pytest.raises(ValueError, match="expected 6"):
        image_msg_to_rgb(Image(height=2, width=1, encoding="rgb8", step=3, data=bytes(3)))
    with pytest.raises(ValueError, match="step"):
        image_msg_to_rgb(Image(height=1, width=2, encoding="rgb8", step=3, data=bytes(6)))
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_image_msg(np.zeros((2, 2, 3), np.float32))
