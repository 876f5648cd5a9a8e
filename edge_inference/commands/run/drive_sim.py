"""`edge-inference drive-sim`: closed-loop driving score of a policy (or the expert) in the simulator.

Default mode ``graph`` runs the real nodes on DDS in this process: camera_node
(sim source) -> policy_node -> pwm_bridge_node -> serial pty -> sim_node's board
-> bicycle dynamics -> sim/pose -> camera. ``--model expert`` replaces the policy
with the pure-pursuit expert node (the reference score). Mode ``direct`` runs
the same world, renderer and model runner in one loop without ROS (fast,
deterministic; for training sweeps).

JSON (--json): laps_completed, off_track_events, mean_cte_m, max_cte_m,
control_rate_hz, e2e_latency_ms {p50, p95} (image stamp -> vehicle/command
publish; with action chunks this includes the age of the chunk being executed),
inference_latency_ms {p50, p95} (image stamp -> action chunk publish),
model_latency_ms {p50, p95} (the model call alone), first_lap_clean, distance_m,
duration_s, model, backend, mode, stop_reason, model_calls_per_s (chunks computed per second of
driving), cpu_s_per_s (CPU seconds of this whole process -- nodes, simulator, renderer, monitor --
per wall second of driving) and params (the --param overrides).

``--param NODE.NAME=VALUE`` (repeatable, YAML-typed values, as in ``up``) overrides a node
parameter of the graph, e.g. ``--param policy_node.mode=ensemble --param
policy_node.n_action_steps=2``, so each comparison row is one command.
"""
from __future__ import annotations

import json
from pathlib import Path

from edge_inference.commands.arg_types import non_negative_float, positive_int
from edge_inference.core.errors import CheckFailed, UsageError
from edge_inference.core.files import write_text_atomic
from edge_inference.sim.closed_loop import EXPERT, drive_direct, drive_graph, print_table


def register(sub) -> None:
    p = sub.add_parser("drive-sim", help="drive N laps in the simulator and score lap completion, CTE, rate, latency",
                       description=__doc__)
    add_args(p)
    p.set_defaults(func=run)


def add_args(p) -> None:
    p.add_argument("--model", default=EXPERT, help="policy model (checkpoint dir / ONNX), or 'expert'")
    p.add_argument("--backend", default="onnxruntime-int8",
                   help="policy backend: onnxruntime, onnxruntime-int8, torch, torch-int8, hailo, heuristic")
    p.add_argument("--laps", type=positive_int, default=1)
    p.add_argument("--timeout", type=non_negative_float, default=0.0,
                   help="give up after this many s (0: 30 s per lap + 15 s)")
    p.add_argument("--mode", choices=("graph", "direct"), default="graph")
    p.add_argument("--track-shape", default="oval", choices=("oval", "bean", "circle"))
    p.add_argument("--board", default="emulator", choices=("emulator", "firmware"),
                   help="graph mode: the Python board emulator or the real firmware in simavr")
    p.add_argument("--json", default="", help="write the score here")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--param", action="append", default=[], metavar="NODE.NAME=VALUE",
                   help="graph mode: override a node parameter (repeatable), e.g. policy_node.mode=ensemble")


def run(args) -> int:
    from edge_inference.ros.graph import parse_param_overrides

    timeout = args.timeout or 30.0 * args.laps + 15.0
    params = parse_param_overrides(args.param)
    if params and args.mode != "graph":
        raise UsageError("--param sets node parameters: it needs --mode graph (direct mode runs no nodes)")
    if args.model != EXPERT and args.backend != "heuristic" and not Path(args.model).exists():
        raise UsageError(f"model not found ({args.model})")
    if args.mode == "graph":
        result = drive_graph(args.model, args.backend, args.laps, timeout, args.track_shape, args.quiet, args.board,
                             params)
    else:
        result = drive_direct(args.model, args.backend, args.laps, timeout, args.track_shape)
    print_table([result])
    print(f"stop: {result['stop_reason']}")
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2))
    if result["laps_completed"] < args.laps or result["off_track_events"] > 0:
        raise CheckFailed(f"FAIL: {result['laps_completed']} of {args.laps} lap(s), "
                          f"{result['off_track_events']} off-track event(s) (stop: {result['stop_reason']})")
    return 0
