"""`edge-inference bench-bridge`: command round trip and board watchdog latency -> JSON.

Round trip = write a COMMAND frame, read the COMMAND_ACK with the same sequence
number (host -> board -> host, through the pty). Measured against the Python board
emulator and, where the firmware tools are installed, the real firmware in simavr
(paced to real time, UART bytes at 115200 baud). Watchdog = the time from the last
COMMAND to the PWM pins at neutral, read from the simulated Timer1 (firmware only), in the
board's simulated time (exact) and in wall time (includes simulation lag).
JSON: ``{"emulator": {"rtt": {p50_ms, p95_ms, ...}}, "firmware_simavr": {"rtt": ...,
"watchdog_neutral_board_time": {...}, "watchdog_neutral_wall_time": {...}}, "ratios": {...}, "config": {...}}``.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from edge_inference.commands.arg_types import positive_float, positive_int
from edge_inference.core.files import write_text_atomic


def register(subparsers) -> None:
    p = subparsers.add_parser("bench-bridge", help="PWM link round trip and board watchdog latency (JSON)",
                              description=__doc__)
    p.add_argument("--json", default="artifacts/bench_bridge.json", help="JSON output path")
    p.add_argument("--runs", type=positive_int, default=300, help="round trips per target")
    p.add_argument("--rate", type=positive_float, default=50.0, help="command rate, Hz (the bridge's send_rate)")
    p.add_argument("--watchdog-runs", type=positive_int, default=5)
    p.set_defaults(func=run)


def stats(samples_ms: list[float]) -> dict:
    x = np.asarray(samples_ms, dtype=np.float64)
    return {"p50_ms": float(np.percentile(x, 50)), "p95_ms": float(np.percentile(x, 95)),
            "max_ms": float(x.max()), "mean_ms": float(x.mean()), "runs": int(x.size)}


def measure_rtt(port_path: str, runs: int, rate_hz: float) -> list[float]:
    from edge_inference.core import serial_protocol as sp
    from edge_inference.devices.board_client import BoardClient
    period = 1.0 / rate_hz
    with BoardClient(port_path) as client:
        client.handshake()
        client.ack(sp.encode_arm, True)
        rtts = []
        for i in range(runs):
            t0 = time.monotonic()
            _, ms = client.request(sp.encode_command, 1500 + (i % 200), 1500, reply=sp.MsgType.COMMAND_ACK)
            rtts.append(ms)
            time.sleep(max(0.0, period - (time.monotonic() - t0)))
        client.ack(sp.encode_arm, False)
    return rtts


def measure_watchdog(board, runs: int) -> tuple[list[float], list[float]]:
    """ms from the last COMMAND to neutral on the simulated PWM pins: (board time, wall time)."""
    from edge_inference.core import serial_protocol as sp
    from edge_inference.devices.board_client import BoardClient
    sim_ms, wall_ms = [], []
    with BoardClient(board.port_path) as client:
        client.handshake()
        client.ack(sp.encode_arm, True)
        for _ in range(runs):
            idle_before = len(board.rx_idle_sim_us)
            for _ in range(10):
                last = time.monotonic()
                client.request(sp.encode_command, 1700, 1600, reply=sp.MsgType.COMMAND_ACK)
                time.sleep(0.02)
            hit = board.wait_pwm(lambda s, t: (s, t) == (1500, 1500), 2.0)
            last_rx_us = board.wait_rx_idle(idle_before + 1, 1.0)
            if hit is None or last_rx_us is None:
                raise RuntimeError("the firmware did not go neutral within 2 s of silence")
            sim_ms.append((hit[3] - last_rx_us) / 1e3)
            wall_ms.append((hit[0] - last) * 1e3)
    return sim_ms, wall_ms


def run(args) -> int:
    from edge_inference.devices.board_emulator import BoardEmulator
    from edge_inference.devices.firmware_sim import FirmwareToolsMissing, SimBoard, build_firmware
    result: dict = {"config": {"runs": args.runs, "rate_hz": args.rate, "machine": platform.machine(),
                               "python": platform.python_version()}}
    with BoardEmulator() as emulator:
        result["emulator"] = {"rtt": stats(measure_rtt(emulator.port_path, args.runs, args.rate))}
    try:
        paths = build_firmware()
    except FirmwareToolsMissing as exc:
        result["firmware_simavr"] = {"skipped": str(exc)}
    else:
        with SimBoard(paths) as board:
            fw = {"rtt": stats(measure_rtt(board.port_path, args.runs, args.rate))}
            sim_ms, wall_ms = measure_watchdog(board, args.watchdog_runs)
            fw["watchdog_neutral_board_time"] = stats(sim_ms)
            fw["watchdog_neutral_wall_time"] = stats(wall_ms)
            fw["watchdog_timeout_ms"] = 250
            fw["simulation_lag_reports_ms"] = board.lag_reports
        result["firmware_simavr"] = fw
        result["ratios"] = {"rtt_p50_firmware_over_emulator":
                            fw["rtt"]["p50_ms"] / result["emulator"]["rtt"]["p50_ms"]}
    write_text_atomic(Path(args.json), json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0
