"""Frame codec: CRC, typed round trips, clear errors, resync after garbage and truncation."""
from __future__ import annotations

import math
import random

import pytest

from edge_inference.core import serial_protocol as sp


def test_crc16_ccitt_false_check_value_and_table_matches_bitwise():
    assert sp.crc16(b"123456789") == 0x29B1 == sp.crc16_ccitt(b"123456789")
    rng = random.Random(0)
    for _ in range(50):
        data = rng.randbytes(rng.randint(0, 40))
        assert sp.crc16(data) == sp.crc16_ccitt(data)


def test_frame_layout():
    frame = sp.encode_command(7, 1600, 1400)
    assert frame[0] == sp.START and frame[-1] == sp.END
    assert (frame[1], frame[2], frame[3]) == (4, sp.MsgType.COMMAND, 7)
    assert frame[4:8] == (1600).to_bytes(2, "little") + (1400).to_bytes(2, "little")
    assert int.from_bytes(frame[8:10], "big") == sp.crc16(frame[1:8])
    assert len(frame) == sp.OVERHEAD + 4


def _one(data: bytes) -> sp.Frame:
    frames = sp.FrameParser().feed(data)
    assert len(frames) == 1
    return frames[0]


def test_typed_round_trips():
    assert sp.decode_command(_one(sp.encode_command(1, 1000, 2000))) == (1000, 2000)
    t = sp.Telemetry(1510, 1490, 1500, 1600, 1950, sp.MODE_MANUAL, True, sp.FLAG_WATCHDOG, 312, 70000 & 0xFFFF)
    assert sp.decode_telemetry(_one(sp.encode_telemetry(2, t))) == t
    imu = sp.ImuSample(123456789, (0.5, -0.25, 9.8125), (0.0, 0.125, -1.5))
    assert sp.decode_imu(_one(sp.encode_imu(3, imu))) == imu
    v = sp.Version(sp.PROTOCOL_VERSION, 1, 2, 3, "uno-pwm")
    assert sp.decode_version(_one(sp.encode_version(4, v))) == v
    lim = sp.ChannelLimits(sp.CHANNEL_THROTTLE, 1300, 1500, 1700)
    assert sp.decode_limits(_one(sp.encode_cal_set(5, lim))) == lim
    assert sp.decode_limits(_one(sp.encode_cal_data(6, lim))) == lim
    ack = sp.CommandAck(1500, 1500, sp.MODE_FAILSAFE, sp.FLAG_WATCHDOG | sp.FLAG_RC_LOST)
    assert sp.decode_command_ack(_one(sp.encode_command_ack(7, ack))) == ack
    assert sp.decode_ack(_one(sp.encode_ack(8, sp.MsgType.ARM, sp.ACK_REFUSED))) == (sp.MsgType.ARM, sp.ACK_REFUSED)
    for enc, typ in ((sp.encode_heartbeat(9), sp.MsgType.HEARTBEAT), (sp.encode_arm(10, True), sp.MsgType.ARM),
                     (sp.encode_estop(11, True), sp.MsgType.ESTOP), (sp.encode_hello(12), sp.MsgType.HELLO),
                     (sp.encode_cal_get(13, 1), sp.MsgType.CAL_GET)):
        assert _one(enc).msg_type == typ


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(sp.ProtocolError, match="unknown message type 0x42"):
        sp.encode_frame(0x42, 0, b"")
    with pytest.raises(sp.ProtocolError, match="COMMAND payload must be 4 bytes, got 3"):
        sp.encode_frame(sp.MsgType.COMMAND, 0, b"abc")
    with pytest.raises(sp.ProtocolError, match="sequence number 256"):
        sp.encode_frame(sp.MsgType.HEARTBEAT, 256, b"")
    with pytest.raises(sp.ProtocolError, match="steering_us=2500"):
        sp.encode_command(0, 2500, 1500)
    with pytest.raises(sp.ProtocolError, match="int number of µs"):
        sp.encode_command(0, 1500.5, 1500)
    with pytest.raises(sp.ProtocolError, match="finite"):
        sp.encode_imu(0, sp.ImuSample(0, (math.nan, 0.0, 0.0), (0.0, 0.0, 0.0)))
    with pytest.raises(sp.ProtocolError, match="min <= center <= max"):
        sp.encode_cal_set(0, sp.ChannelLimits(0, 1600, 1500, 1700))
    with pytest.raises(sp.ProtocolError, match="expected TELEMETRY"):
        sp.decode_telemetry(_one(sp.encode_heartbeat(0)))


def test_parser_handles_byte_by_byte_input():
    parser = sp.FrameParser()
    data = sp.encode_command(1, 1500, 1500) + sp.encode_heartbeat(2)
    frames = [f for b in data for f in parser.feed(bytes((b,)))]
    assert [(f.msg_type, f.seq) for f in frames] == [(sp.MsgType.COMMAND, 1), (sp.MsgType.HEARTBEAT, 2)]


def test_parser_resyncs_after_garbage_truncation_and_corruption():
    parser = sp.FrameParser()
    good = sp.encode_command(3, 1200, 1800)
    corrupted = bytearray(sp.encode_command(4, 1500, 1500))
    corrupted[5] ^= 0x01
    truncated = sp.encode_telemetry(5, sp.Telemetry(1500, 1500, 0, 0, 0, 0, False, 0, 0, 0))[:10]
    wrong_end = bytearray(sp.encode_heartbeat(6))
    wrong_end[-1] = 0x00
    stream = b"\x00\xaa\xaa\x55garbage" + bytes(corrupted) + truncated + bytes(wrong_end) + good
    frames = parser.feed(stream)
    assert [(f.msg_type, f.seq) for f in frames] == [(sp.MsgType.COMMAND, 3)]
    assert sp.decode_command(frames[0]) == (1200, 1800)
    s = parser.stats
    assert s.crc_errors == 1 and s.bad_end >= 2 and s.bad_length >= 1 and s.garbage_bytes > 0
    assert parser.feed(sp.encode_heartbeat(7))[0].seq == 7  # and keeps working


def test_wrong_length_for_type_is_rejected_before_waiting_for_payload():
    parser = sp.FrameParser()
    # a corrupted length byte claiming a long payload must not swallow the next frame
    assert parser.feed(bytes((sp.START, 30, sp.MsgType.COMMAND, 0)) + sp.encode_heartbeat(1))[0].seq == 1
    assert parser.stats.bad_length == 1


def test_seq_counter_wraps():
    c = sp.SeqCounter(254)
    assert [c.next(), c.next(), c.next()] == [255, 0, 1]
