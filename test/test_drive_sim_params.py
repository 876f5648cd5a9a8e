"""drive-sim --param NODE.NAME=VALUE reaches the graph, and the shipped chunk mode keeps commands fresh.

Issue 17: with queue mode executing 8 actions per chunk the executed command was up to ~250 ms
older than its camera frame (p95) in closed loop; the shipped default (config/rover.yaml) must
keep that age well under it. Bounds are loose (shared CI cores): this guards against a default
that regresses to stale commands, it does not measure latency.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "models" / "sim_demo" / "policy_cnn"


def test_drive_sim_parses_param_overrides_and_refuses_them_in_direct_mode(capsys):
    from edge_inference.cli import build_parser, main
    from edge_inference.ros.graph import parse_param_overrides

    args = build_parser().parse_args(["drive-sim", "--model", str(POLICY), "--param", "policy_node.mode=ensemble",
                                      "--param", "policy_node.ensemble_coeff=-0.1",
                                      "--param", "policy_node.n_action_steps=2"])
    assert parse_param_overrides(args.param) == {"policy_node": {"mode": "ensemble", "ensemble_coeff": -0.1,
                                                                 "n_action_steps": 2}}
    # direct mode has no nodes to take the parameter
    assert main(["drive-sim", "--model", str(POLICY), "--mode", "direct", "--param", "policy_node.mode=queue"]) == 2
    assert "needs --mode graph" in capsys.readouterr().err


def _drive(params: dict, seconds: float):
    pytest.importorskip("edge_inference_msgs.msg", reason="run through `make test` (needs `make msgs`)")
    from edge_inference.sim.closed_loop import ClosedLoop, score_dict

    loop = ClosedLoop(str(POLICY), "onnxruntime-int8", params=params)
    try:
        reason = loop.drive(laps=1, timeout_s=seconds)
        node = loop.graph.node("policy_node")
        return reason, node.sched_cfg, score_dict(loop.scorer.result(), loop.stats, loop.elapsed(), loop.cpu_seconds())
    finally:
        loop.close()


def test_param_reaches_the_policy_node_in_closed_loop():
    reason, cfg, score = _drive({"policy_node": {"mode": "queue", "n_action_steps": 8}}, seconds=6.0)
    assert cfg.mode == "queue" and cfg.n_action_steps == 8
    assert reason == "timeout" and score["off_track_events"] == 0
    assert 0 < score["model_calls_per_s"] < 8.0  # a chunk per 8 ticks at 30 Hz: ~3.75/s
    assert score["cpu_s_per_s"] > 0


def test_shipped_chunk_mode_executes_fresh_commands():
    from edge_inference.core.chunk_scheduler import SchedulerConfig

    shipped = SchedulerConfig()  # config/rover.yaml leaves chunk execution to the model, then these defaults
    reason, cfg, score = _drive({}, seconds=8.0)
    assert (shipped.mode, shipped.n_action_steps) == ("queue", 2)
    assert cfg.mode == shipped.mode and cfg.n_action_steps == shipped.n_action_steps
    assert reason == "timeout" and score["off_track_events"] == 0
    # issue 17 bound: e2e p95 <= 100 ms (measured ~50-80 ms); loose here for loaded CI machines,
    # still far below the ~250 ms of executing 8 actions per chunk
    assert score["e2e_latency_ms"]["p95"] <= 150.0, score["e2e_latency_ms"]
