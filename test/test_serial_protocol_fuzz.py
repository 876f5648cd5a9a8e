"""Fuzz both frame parsers (Python, and the firmware's C parser built for the host) with
>= 100,000 corrupted frames (mutated valid frames and random frame-like noise) interleaved
with valid frames. Every valid frame must come out, in order, and nothing else: zero
corrupted frames accepted, no exception.

Mutations are the error classes CRC-16/CCITT is guaranteed to catch (1-3 bit flips,
bursts <= 16 bits, one replaced byte) plus framing errors (truncation, an inserted or
deleted byte), which the fixed per-type length, the end marker and the CRC together
catch with probability ~1 - 2^-24 per frame. The seed is fixed, so the run is repeatable.
Chunks are separated by one 0x00 byte (see make_stream for why).
"""
from __future__ import annotations

import random
import subprocess

import pytest

from edge_inference.core import serial_protocol as sp

N_CORRUPTED = 100_000
N_VALID = 30_000
TYPES = sorted(sp.PAYLOAD_LENGTHS)


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    """A corrupted copy of ``frame`` that no longer contains the intact frame (a duplicated
    start or end byte would leave a valid frame plus one garbage byte: not corruption)."""
    while True:
        b = _mutate_once(rng, frame)
        if frame not in b:
            return b


def _mutate_once(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(frame)
    nbits = len(b) * 8
    kind = rng.randrange(7)
    if kind == 0:  # 1-3 bit flips anywhere, markers included
        for bit in rng.sample(range(nbits), rng.randint(1, 3)):
            b[bit // 8] ^= 0x80 >> (bit % 8)
    elif kind == 1:  # burst error: first and last bit of a <= 16-bit window flipped, inside random
        length = rng.randint(2, 16)
        start = rng.randrange(0, nbits - length + 1)
        pattern = [1] + [rng.randint(0, 1) for _ in range(length - 2)] + [1]
        for i, flip in enumerate(pattern):
            if flip:
                bit = start + i
                b[bit // 8] ^= 0x80 >> (bit % 8)
    elif kind == 2:  # one byte replaced
        i = rng.randrange(len(b))
        b[i] = (b[i] + rng.randint(1, 255)) & 0xFF
    elif kind == 3:  # truncated (cable glitch mid-frame)
        del b[rng.randrange(1, len(b)):]
    elif kind == 4:  # a byte inserted
        b.insert(rng.randrange(1, len(b)), rng.randrange(256))
    elif kind == 5:  # a byte lost (not the start byte: a 0xAA ending the previous chunk
        del b[rng.randrange(1, len(b))]  # would complete the rest into the intact frame)
    else:  # a byte duplicated
        i = rng.randrange(len(b))
        b.insert(i, b[i])
    return bytes(b)


def _noise(rng: random.Random) -> bytes:
    """Random bytes, often shaped like a frame header so the parser has to check everything."""
    if rng.random() < 0.5:
        t = rng.choice(TYPES)
        n = sp.PAYLOAD_LENGTHS[t]
        return bytes((sp.START, n, t)) + rng.randbytes(n + 3) + (bytes((sp.END,)) if rng.random() < 0.5 else b"")
    return bytes(rng.choice((sp.START, sp.END, rng.randrange(256))) for _ in range(rng.randint(1, 40)))


def make_stream(seed: int = 1234) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    rng = random.Random(seed)
    kinds = ["valid"] * N_VALID + ["mutated"] * (N_CORRUPTED * 7 // 10) + ["noise"] * (N_CORRUPTED * 3 // 10)
    rng.shuffle(kinds)
    chunks, expected = [], []
    for i, kind in enumerate(kinds):
        t = rng.choice(TYPES)
        payload = rng.randbytes(sp.PAYLOAD_LENGTHS[t])
        frame = sp.encode_frame(t, i & 0xFF, payload)
        if kind == "valid":
            chunks.append(frame)
            expected.append((t, i & 0xFF, payload))
        elif kind == "mutated":
            chunks.append(_mutate(rng, frame))
        else:
            chunks.append(_noise(rng))
    # A 0x00 between chunks: without it a truncated frame missing only its end byte, followed
    # by noise starting with 0x55, is byte-for-byte the intact frame (likewise a lost start
    # byte after noise ending in 0xAA). Those bytes *are* a valid frame on the wire, so no
    # parser could or should reject them; the guard keeps "corrupted" meaning corrupted.
    return b"\x00".join(chunks), expected


@pytest.fixture(scope="module")
def stream():
    return make_stream()


def test_python_parser_accepts_exactly_the_valid_frames(stream):
    data, expected = stream
    rng = random.Random(99)
    parser = sp.FrameParser()
    got = []
    pos = 0
    while pos < len(data):  # random chunking: frames split across reads
        n = rng.randint(1, 512)
        got += [(f.msg_type, f.seq, f.payload) for f in parser.feed(data[pos:pos + n])]
        pos += n
    assert len(expected) == N_VALID
    assert got == expected, f"{len(got)} accepted vs {len(expected)} valid"
    s = parser.stats
    assert s.frames == N_VALID and s.errors > N_CORRUPTED // 2
    print(f"\npython parser: {len(data)} bytes, {s.frames} frames, crc {s.crc_errors}, "
          f"length {s.bad_length}, end {s.bad_end}, garbage bytes {s.garbage_bytes}")


def test_c_parser_accepts_exactly_the_valid_frames(stream):
    from edge_inference.devices.firmware_sim import FirmwareToolsMissing, build_firmware
    try:
        paths = build_firmware()
    except FirmwareToolsMissing as exc:
        pytest.skip(str(exc))
    data, expected = stream
    proc = subprocess.run([str(paths.proto_host), "parse"], input=data, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    stats = lines.pop().split()
    got = [(int(t), int(s), bytes.fromhex(p[0]) if p else b"") for t, s, *p in (ln.split() for ln in lines)]
    assert got == expected, f"{len(got)} accepted vs {len(expected)} valid"
    assert stats[0] == "stats" and int(stats[1]) == N_VALID
    py = sp.FrameParser()
    py.feed(data)
    # same resync decisions as the Python parser (the C counters are uint16 and wrap)
    assert [int(v) for v in stats[2:]] == [py.stats.crc_errors & 0xFFFF, py.stats.bad_length & 0xFFFF,
                                           py.stats.bad_end & 0xFFFF, py.stats.garbage_bytes]
    print(f"\nC parser: {stats}")
