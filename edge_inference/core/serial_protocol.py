"""Framed, checksummed binary protocol between the bridge and the PWM board.

The same format is implemented in C in ``firmware/arduino/pwm_bridge/protocol.c``
and specified in ``firmware/PROTOCOL.md``; keep the three in step.

Frame (all multi-byte payload fields little-endian)::

    0xAA | len | type | seq | payload[len] | crc_hi | crc_lo | 0x55

``crc`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over ``len, type, seq,
payload``. Every message type has one fixed payload length, and the parser
rejects a frame whose length does not match its type before waiting for the
payload, so a corrupted length byte cannot stall the link. After any failure the
parser drops only the start byte and rescans, so a valid frame hidden behind
garbage or a truncated frame is still found. A corrupted frame is never returned.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum

START = 0xAA
END = 0x55
HEADER_LEN = 4          # start, len, type, seq
OVERHEAD = HEADER_LEN + 3  # + crc (2) + end
PROTOCOL_VERSION = 1
MAX_PAYLOAD = 32


class ProtocolError(ValueError):
    """A frame or payload that does not follow the protocol."""


class MsgType(IntEnum):
    # host -> board
    COMMAND = 0x01
    HEARTBEAT = 0x02
    ARM = 0x03
    ESTOP = 0x04
    CAL_GET = 0x05
    CAL_SET = 0x06
    HELLO = 0x07
    # board -> host
    ACK = 0x80
    COMMAND_ACK = 0x81
    HEARTBEAT_ACK = 0x82
    CAL_DATA = 0x85
    VERSION = 0x87
    TELEMETRY = 0x90
    IMU = 0x91


# Fixed payload layout of every type (struct format, little-endian).
PAYLOAD_FORMATS: dict[MsgType, str] = {
    MsgType.COMMAND: "<HH",            # steering_us, throttle_us
    MsgType.HEARTBEAT: "<",
    MsgType.ARM: "<B",                 # 1 arm, 0 disarm
    MsgType.ESTOP: "<B",               # 1 latch, 0 release
    MsgType.CAL_GET: "<B",             # channel
    MsgType.CAL_SET: "<BHHH",          # channel, min_us, center_us, max_us
    MsgType.HELLO: "<B",               # host protocol version
    MsgType.ACK: "<BB",                # acked type, status
    MsgType.COMMAND_ACK: "<HHBH",      # applied steering_us, throttle_us, mode, flags
    MsgType.HEARTBEAT_ACK: "<",
    MsgType.CAL_DATA: "<BHHH",         # channel, min_us, center_us, max_us
    MsgType.VERSION: "<BBBB8s",        # protocol, fw major, minor, patch, board id
    MsgType.TELEMETRY: "<HHHHHBBHHH",  # see Telemetry
    MsgType.IMU: "<I6f",               # t_us, ax, ay, az (m/s²), gx, gy, gz (rad/s)
}
PAYLOAD_LENGTHS: dict[int, int] = {int(t): struct.calcsize(f) for t, f in PAYLOAD_FORMATS.items()}
assert max(PAYLOAD_LENGTHS.values()) <= MAX_PAYLOAD

# Board modes and failsafe flags: the same numbers as edge_inference_msgs/VehicleState.
MODE_DISARMED, MODE_AUTO, MODE_MANUAL, MODE_FAILSAFE, MODE_ESTOP = range(5)
MODE_NAMES = {MODE_DISARMED: "disarmed", MODE_AUTO: "auto", MODE_MANUAL: "manual",
              MODE_FAILSAFE: "failsafe", MODE_ESTOP: "estop"}
FLAG_WATCHDOG = 1
FLAG_RC_LOST = 2
FLAG_BRIDGE_TIMEOUT = 4
FLAG_ESTOP = 8
FLAG_CRC_ERRORS = 16

# ACK status codes
ACK_OK = 0
ACK_INVALID = 1       # values out of range
ACK_REFUSED = 2       # not allowed now (e.g. arm while e-stopped, calibrate while armed)

CHANNEL_STEERING = 0
CHANNEL_THROTTLE = 1

# Absolute pulse limits any frame may carry (servo/ESC standard range with margin), µs.
PULSE_MIN_US = 800
PULSE_MAX_US = 2200


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection); check("123456789") = 0x29B1."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Table-driven CRC-16/CCITT-FALSE (same result as ``crc16_ccitt``, ~8x faster)."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


@dataclass(frozen=True)
class Frame:
    msg_type: int
    seq: int
    payload: bytes


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Wrap ``payload`` in a frame; raises ProtocolError for an unknown type or wrong length."""
    expected = PAYLOAD_LENGTHS.get(int(msg_type))
    if expected is None:
        raise ProtocolError(f"unknown message type 0x{int(msg_type):02x}")
    if len(payload) != expected:
        raise ProtocolError(f"{MsgType(msg_type).name} payload must be {expected} bytes, got {len(payload)}")
    if not 0 <= seq <= 255:
        raise ProtocolError(f"sequence number {seq} outside 0..255")
    body = bytes((len(payload), int(msg_type), seq)) + payload
    crc = crc16(body)
    return bytes((START,)) + body + bytes((crc >> 8, crc & 0xFF, END))


@dataclass
class ParserStats:
    frames: int = 0
    crc_errors: int = 0
    bad_length: int = 0       # length does not match the type (or unknown type)
    bad_end: int = 0
    garbage_bytes: int = 0    # bytes skipped while looking for a start marker

    @property
    def errors(self) -> int:
        return self.crc_errors + self.bad_length + self.bad_end


class FrameParser:
    """Incremental parser: ``feed(bytes) -> list[Frame]``; keeps partial frames between calls."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = ParserStats()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        while True:
            start = buf.find(START)
            if start < 0:
                self.stats.garbage_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.stats.garbage_bytes += start
                del buf[:start]
            if len(buf) < HEADER_LEN:
                break
            length, msg_type = buf[1], buf[2]
            if PAYLOAD_LENGTHS.get(msg_type) != length:
                self.stats.bad_length += 1
                del buf[:1]
                continue
            total = OVERHEAD + length
            if len(buf) < total:
                break
            if buf[total - 1] != END:
                self.stats.bad_end += 1
                del buf[:1]
                continue
            crc = (buf[total - 3] << 8) | buf[total - 2]
            if crc16(memoryview(buf)[1:total - 3]) != crc:
                self.stats.crc_errors += 1
                del buf[:1]
                continue
            frames.append(Frame(msg_type, buf[3], bytes(buf[HEADER_LEN:HEADER_LEN + length])))
            self.stats.frames += 1
            del buf[:total]
        return frames

    def reset(self) -> None:
        self._buf.clear()


# ---------------------------------------------------------------- typed messages

def _check_pulse(name: str, us: int) -> int:
    if not isinstance(us, int) or isinstance(us, bool):
        raise ProtocolError(f"{name} must be an int number of µs, got {us!r}")
    if not PULSE_MIN_US <= us <= PULSE_MAX_US:
        raise ProtocolError(f"{name}={us} µs outside {PULSE_MIN_US}..{PULSE_MAX_US}")
    return us


def encode_command(seq: int, steering_us: int, throttle_us: int) -> bytes:
    return encode_frame(MsgType.COMMAND, seq, struct.pack(
        "<HH", _check_pulse("steering_us", steering_us), _check_pulse("throttle_us", throttle_us)))


def decode_command(frame: Frame) -> tuple[int, int]:
    _expect(frame, MsgType.COMMAND)
    return struct.unpack("<HH", frame.payload)


def encode_heartbeat(seq: int) -> bytes:
    return encode_frame(MsgType.HEARTBEAT, seq, b"")


def encode_arm(seq: int, armed: bool) -> bytes:
    return encode_frame(MsgType.ARM, seq, bytes((1 if armed else 0,)))


def encode_estop(seq: int, latched: bool) -> bytes:
    return encode_frame(MsgType.ESTOP, seq, bytes((1 if latched else 0,)))


def encode_hello(seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    return encode_frame(MsgType.HELLO, seq, bytes((version,)))


def encode_ack(seq: int, acked_type: int, status: int = ACK_OK) -> bytes:
    return encode_frame(MsgType.ACK, seq, bytes((int(acked_type), status)))


def decode_ack(frame: Frame) -> tuple[int, int]:
    _expect(frame, MsgType.ACK)
    return frame.payload[0], frame.payload[1]


@dataclass(frozen=True)
class ChannelLimits:
    """Board-side hard limits of one output channel, µs. The board clamps every pulse to them."""
    channel: int
    min_us: int
    center_us: int
    max_us: int

    def validate(self) -> "ChannelLimits":
        if self.channel not in (CHANNEL_STEERING, CHANNEL_THROTTLE):
            raise ProtocolError(f"calibration channel {self.channel} is not 0 (steering) or 1 (throttle)")
        for name in ("min_us", "center_us", "max_us"):
            _check_pulse(name, getattr(self, name))
        if not self.min_us <= self.center_us <= self.max_us:
            raise ProtocolError(f"limits must satisfy min <= center <= max, got {self}")
        return self


def encode_cal_get(seq: int, channel: int) -> bytes:
    return encode_frame(MsgType.CAL_GET, seq, bytes((channel,)))


def encode_cal_set(seq: int, limits: ChannelLimits) -> bytes:
    limits.validate()
    return encode_frame(MsgType.CAL_SET, seq, struct.pack(
        "<BHHH", limits.channel, limits.min_us, limits.center_us, limits.max_us))


def encode_cal_data(seq: int, limits: ChannelLimits) -> bytes:
    return encode_frame(MsgType.CAL_DATA, seq, struct.pack(
        "<BHHH", limits.channel, limits.min_us, limits.center_us, limits.max_us))


def decode_limits(frame: Frame) -> ChannelLimits:
    if frame.msg_type not in (MsgType.CAL_SET, MsgType.CAL_DATA):
        raise ProtocolError(f"expected CAL_SET/CAL_DATA, got type 0x{frame.msg_type:02x}")
    return ChannelLimits(*struct.unpack("<BHHH", frame.payload))


@dataclass(frozen=True)
class CommandAck:
    steering_us: int
    throttle_us: int
    mode: int
    flags: int


def encode_command_ack(seq: int, ack: CommandAck) -> bytes:
    return encode_frame(MsgType.COMMAND_ACK, seq, struct.pack(
        "<HHBH", ack.steering_us, ack.throttle_us, ack.mode, ack.flags))


def decode_command_ack(frame: Frame) -> CommandAck:
    _expect(frame, MsgType.COMMAND_ACK)
    return CommandAck(*struct.unpack("<HHBH", frame.payload))


@dataclass(frozen=True)
class Version:
    protocol: int
    major: int
    minor: int
    patch: int
    board: str

    def __str__(self) -> str:
        return f"{self.board} fw {self.major}.{self.minor}.{self.patch} (protocol {self.protocol})"


def encode_version(seq: int, v: Version) -> bytes:
    board = v.board.encode("ascii")[:8].ljust(8, b"\0")
    return encode_frame(MsgType.VERSION, seq, struct.pack("<BBBB8s", v.protocol, v.major, v.minor, v.patch, board))


def decode_version(frame: Frame) -> Version:
    _expect(frame, MsgType.VERSION)
    p, a, b, c, board = struct.unpack("<BBBB8s", frame.payload)
    return Version(p, a, b, c, board.rstrip(b"\0").decode("ascii", errors="replace"))


@dataclass(frozen=True)
class Telemetry:
    """Periodic board report. Pulse widths in µs; 0 for an RC channel with no pulses."""
    steering_us: int
    throttle_us: int
    rc_steering_us: int
    rc_throttle_us: int
    rc_mode_us: int
    mode: int
    armed: bool
    flags: int
    loop_time_us: int
    crc_errors: int     # frames the board rejected since boot (wraps at 65536)


def encode_telemetry(seq: int, t: Telemetry) -> bytes:
    return encode_frame(MsgType.TELEMETRY, seq, struct.pack(
        "<HHHHHBBHHH", t.steering_us, t.throttle_us, t.rc_steering_us, t.rc_throttle_us, t.rc_mode_us,
        t.mode, 1 if t.armed else 0, t.flags, min(t.loop_time_us, 0xFFFF), t.crc_errors & 0xFFFF))


def decode_telemetry(frame: Frame) -> Telemetry:
    _expect(frame, MsgType.TELEMETRY)
    f = struct.unpack("<HHHHHBBHHH", frame.payload)
    return Telemetry(f[0], f[1], f[2], f[3], f[4], f[5], bool(f[6]), f[7], f[8], f[9])


@dataclass(frozen=True)
class ImuSample:
    """One IMU sample as the board streams it: board time µs, accel m/s², gyro rad/s."""
    t_us: int
    accel: tuple[float, float, float]
    gyro: tuple[float, float, float]


def encode_imu(seq: int, s: ImuSample) -> bytes:
    values = (*s.accel, *s.gyro)
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise ProtocolError(f"IMU sample needs 3 finite accel and 3 finite gyro values, got {values}")
    return encode_frame(MsgType.IMU, seq, struct.pack("<I6f", s.t_us & 0xFFFFFFFF, *values))


def decode_imu(frame: Frame) -> ImuSample:
    _expect(frame, MsgType.IMU)
    t, ax, ay, az, gx, gy, gz = struct.unpack("<I6f", frame.payload)
    return ImuSample(t, (ax, ay, az), (gx, gy, gz))


def _expect(frame: Frame, msg_type: MsgType) -> None:
    if frame.msg_type != msg_type:
        raise ProtocolError(f"expected {msg_type.name}, got type 0x{frame.msg_type:02x}")


@dataclass
class SeqCounter:
    """8-bit wrapping sequence numbers."""
    value: int = field(default=0)

    def next(self) -> int:
        self.value = (self.value + 1) & 0xFF
        return self.value
