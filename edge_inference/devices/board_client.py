"""A plain (non-ROS) client of the PWM board: request/reply over pyserial.

Used by ``edge-inference calibrate`` and ``edge-inference bench-bridge``; the ROS
node keeps its own reader thread instead (it must never block a callback).
"""
from __future__ import annotations

import time

import serial

from edge_inference.core import serial_protocol as sp
from edge_inference.core.errors import EdgeInferenceError


class BoardError(EdgeInferenceError, RuntimeError):
    """The board answered, but not as this host needs (protocol version, refused command)."""


class BoardTimeout(EdgeInferenceError, TimeoutError):
    """The board did not answer in time."""


class BoardClient:
    def __init__(self, port: str, baudrate: int = 115200):
        try:
            self.port = serial.Serial(port, baudrate, timeout=0.01, write_timeout=0.5)
        except (serial.SerialException, OSError) as exc:
            raise serial.SerialException(f"cannot open the PWM board on {port}: {exc}") from exc
        self.parser = sp.FrameParser()
        self.seq = sp.SeqCounter()
        self.pending: list[sp.Frame] = []

    def send(self, encoder, *args) -> int:
        """Encode with the next sequence number, write; return the sequence number."""
        seq = self.seq.next()
        self.port.write(encoder(seq, *args))
        return seq

    def pump(self) -> None:
        self.pending += self.parser.feed(self.port.read(max(1, self.port.in_waiting)))

    def wait_for(self, msg_type: int, seq: int | None = None, timeout_s: float = 1.0) -> sp.Frame:
        end = time.monotonic() + timeout_s
        while True:
            for i, f in enumerate(self.pending):
                if f.msg_type == msg_type and (seq is None or f.seq == seq):
                    del self.pending[:i + 1]
                    return f
            if time.monotonic() > end:
                raise BoardTimeout(f"no {sp.MsgType(msg_type).name} (seq {seq}) from the board in {timeout_s} s")
            self.pump()

    def request(self, encoder, *args, reply: int, timeout_s: float = 1.0) -> tuple[sp.Frame, float]:
        """Send and wait for the reply with the same sequence number: (frame, round trip ms)."""
        t0 = time.monotonic()
        frame = self.wait_for(reply, self.send(encoder, *args), timeout_s)
        return frame, (time.monotonic() - t0) * 1e3

    def handshake(self, timeout_s: float = 3.0) -> sp.Version:
        """HELLO until VERSION (a board still booting after the USB auto-reset misses the first)."""
        end = time.monotonic() + timeout_s
        while True:
            try:
                frame, _ = self.request(sp.encode_hello, reply=sp.MsgType.VERSION, timeout_s=0.25)
            except BoardTimeout:
                if time.monotonic() > end:
                    raise BoardTimeout(f"the board did not answer HELLO within {timeout_s} s") from None
                continue
            version = sp.decode_version(frame)
            if version.protocol != sp.PROTOCOL_VERSION:
                raise BoardError(f"board speaks protocol {version.protocol}, this host {sp.PROTOCOL_VERSION}")
            return version

    def ack(self, encoder, *args, timeout_s: float = 1.0) -> int:
        """Send a command answered by ACK; return the ACK status."""
        frame, _ = self.request(encoder, *args, reply=sp.MsgType.ACK, timeout_s=timeout_s)
        return sp.decode_ack(frame)[1]

    def telemetry(self, timeout_s: float = 1.0) -> sp.Telemetry:
        """The next telemetry frame received after this call."""
        self.pump()
        self.pending.clear()
        return sp.decode_telemetry(self.wait_for(sp.MsgType.TELEMETRY, timeout_s=timeout_s))

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "BoardClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
