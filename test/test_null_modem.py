"""The pty null-modem used to connect the bridge to a board without hardware."""
import time

import serial

from edge_inference.devices.null_modem import NullModem


def _read(port, n, timeout=2.0):
    end, buf = time.monotonic() + timeout, b""
    while len(buf) < n and time.monotonic() < end:
        buf += port.read(n - len(buf))
    return buf


def test_bytes_cross_both_ways_untouched_and_unplug_drops_them():
    with NullModem() as nm:
        a = serial.Serial(nm.path_a, 115200, timeout=0.1)
        b = serial.Serial(nm.path_b, 115200, timeout=0.1)
        payload = bytes(range(256))  # includes \r, \n, ^C, ^S: raw mode must not mangle them
        a.write(payload)
        assert _read(b, 256) == payload
        b.write(b"\x02hello\x03")
        assert _read(a, 7) == b"\x02hello\x03"
        nm.unplug()
        a.write(b"lost")
        assert _read(b, 4, timeout=0.3) == b""
        nm.replug()
        a.write(b"back")
        assert _read(b, 4) == b"back"
        a.close()
        b.close()
