"""Closed-loop driving of the simulator: the policy (through the real nodes, or direct) drives, the lap scorer scores."""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

EXPERT = "expert"


def _percentiles(values) -> dict:
    import numpy as np
    if not len(values):
        return {"p50": None, "p95": None}
    a = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2)}


@dataclass
class RunStats:
    """What the monitor collects while the loop runs."""

    commands: int = 0
    command_latency_ms: list = field(default_factory=list)
    inference_latency_ms: list = field(default_factory=list)   # image stamp -> chunk publish
    model_latency_ms: list = field(default_factory=list)       # model call only
    chunks: int = 0
    behaviors: int = 0
    behavior_hits: int = 0
    last_behavior: str = "-"
    true_behavior: str = "-"


def score_dict(score, stats: RunStats, duration_s: float, cpu_s: float | None = None, **extra) -> dict:
    d = score.to_dict()
    out = {"laps_completed": d["laps_completed"], "off_track_events": d["off_track_events"],
           "mean_cte_m": round(d["mean_cte_m"], 4), "max_cte_m": round(d["max_cte_m"], 4),
           "control_rate_hz": round(stats.commands / duration_s, 2) if duration_s > 0 else 0.0,
           "e2e_latency_ms": _percentiles(stats.command_latency_ms),
           "inference_latency_ms": _percentiles(stats.inference_latency_ms),
           "model_latency_ms": _percentiles(stats.model_latency_ms),
           "first_lap_clean": d["first_lap_clean"], "distance_m": round(d["distance_m"], 2),
           "duration_s": round(duration_s, 2),
           "model_calls_per_s": round(stats.chunks / duration_s, 2) if duration_s > 0 else 0.0}
    if cpu_s is not None and duration_s > 0:
        out["cpu_s_per_s"] = round(cpu_s / duration_s, 3)
    out.update(extra)
    return out


class ClosedLoop:
    """The rover graph plus sim_node (board mode) and a monitor node, in this process.

    model == "expert": expert_node drives instead of policy_node.
    """

    def __init__(self, model: str, backend: str, track_shape: str = "oval", with_behavior: bool = False,
                 behavior_model: str = "", behavior_backend: str = "heuristic", board: str = "emulator",
                 params: dict[str, dict] | None = None):
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from edge_inference.ros.graph import NodeSpec, describe
        from edge_inference.ros.graph_runner import Graph
        from edge_inference.ros.qos import reliable_qos, sensor_qos
        from edge_inference.sim.score import LapScorer
        from edge_inference.sim.track import Track, TrackConfig
        from edge_inference_msgs.msg import ActionChunk, BehaviorState, VehicleCommand

        self._tmp = tempfile.mkdtemp(prefix="sim-board-")
        port = os.path.join(self._tmp, "ttySIM")
        track_params = {"track_shape": track_shape}
        overrides = {
            "camera_node": {"camera_source": f"sim:track_shape={track_shape}"},
            "pwm_bridge_node": {"serial_port": port, "arm_on_connect": True},
            "sim_node": {"board_port": port, "board": board, **track_params},
            "behavior_node": {"backend": behavior_backend, "model_path": behavior_model},
        }
        if model != EXPERT:
            overrides["policy_node"] = {"backend": backend, "model_path": "" if backend == "heuristic" else model,
                                        "enabled": True}
        for node, values in (params or {}).items():  # --param NODE.NAME=VALUE, on top of the above
            overrides.setdefault(node, {}).update(values)
        specs = describe(backend="cpu", with_sim=True, overrides=overrides)
        keep = {"camera_node", "pwm_bridge_node", "sim_node"} | ({"policy_node"} if model != EXPERT else set())
        keep |= {"behavior_node"} if with_behavior else set()
        specs = [s for s in specs if s.name in keep]
        if model == EXPERT:
            specs.append(NodeSpec(name="expert_node", executable="expert_node",
                                  module="edge_inference.ros.nodes.expert_node", class_name="ExpertNode",
                                  parameters=dict(track_params)))
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        try:
            self.graph = Graph(specs, context=self.context)
            self.graph.start()
        except Exception:
            rclpy.try_shutdown(context=self.context)
            raise
        self.node = Node("drive_sim_monitor", context=self.context)
        self.scorer = LapScorer(Track(TrackConfig(shape=track_shape)))
        self.stats = RunStats()
        self.off_since: float | None = None
        n = self.node
        n.create_subscription(PoseStamped, "sim/pose", self._on_pose, sensor_qos())
        n.create_subscription(VehicleCommand, "vehicle/command", self._on_command, reliable_qos())
        n.create_subscription(ActionChunk, "policy/action_chunk", self._on_chunk, reliable_qos())
        n.create_subscription(BehaviorState, "behavior/state", self._on_behavior, reliable_qos())
        n.create_subscription(BehaviorState, "behavior/label", self._on_label, reliable_qos())
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(n)
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()

    # -- monitor callbacks
    def _now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _on_pose(self, msg) -> None:
        from edge_inference.ros.stamps import stamp_to_ns
        self.scorer.update(msg.pose.position.x, msg.pose.position.y, stamp_to_ns(msg.header.stamp) * 1e-9)

    def _on_command(self, msg) -> None:
        from edge_inference.ros.stamps import stamp_to_ns
        self.stats.commands += 1
        ns = stamp_to_ns(msg.header.stamp)
        if ns > 0:
            self.stats.command_latency_ms.append((self._now_ns() - ns) * 1e-6)

    def _on_chunk(self, msg) -> None:
        self.stats.chunks += 1
        self.stats.inference_latency_ms.append(float(msg.latency_ms))
        self.stats.model_latency_ms.append(float(msg.inference_latency_ms))

    def _on_behavior(self, msg) -> None:
        self.stats.behaviors += 1
        self.stats.last_behavior = msg.label
        self.stats.behavior_hits += msg.label == self.stats.true_behavior

    def _on_label(self, msg) -> None:
        self.stats.true_behavior = msg.label

    # -- driving
    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def off_track_for(self) -> float:
        """Seconds the car has been continuously off the lane (0 when on it)."""
        now = time.monotonic()
        if self.scorer.off_track:
            self.off_since = self.off_since or now
            return now - self.off_since
        self.off_since = None
        return 0.0

    def drive(self, laps: int, timeout_s: float, on_tick=None, stuck_s: float = 4.0) -> str:
        """Run until ``laps`` are done, the car is stuck off track, or the timeout; return why it stopped."""
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()
        while True:
            self.spin_for(0.25)
            if on_tick:
                on_tick(self)
            if self.scorer.laps >= laps:
                return "laps completed"
            if self.off_track_for() > stuck_s:
                return f"off track for more than {stuck_s:.0f} s"
            if time.monotonic() - self.t0 > timeout_s:
                return "timeout"

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system, all threads) of this process since ``drive`` started."""
        return time.process_time() - self.cpu0

    def close(self) -> None:
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        self.graph.close()
        rclpy.try_shutdown(context=self.context)
        for f in Path(self._tmp).glob("*"):
            f.unlink(missing_ok=True)
        os.rmdir(self._tmp)


def drive_graph(model: str, backend: str, laps: int, timeout_s: float, track_shape: str = "oval",
                quiet: bool = False, board: str = "emulator", params: dict[str, dict] | None = None) -> dict:
    loop = ClosedLoop(model, backend, track_shape, board=board, params=params)
    try:
        def report(lp):
            if quiet or int(lp.elapsed() * 4) % 8:
                return
            r = lp.scorer.result()
            print(f"[{lp.elapsed():5.1f}s] laps {r.laps_completed}  progress {r.distance_m:6.1f} m  "
                  f"cte mean {r.mean_cte_m:.3f} m  off-track {r.off_track_events}  commands {lp.stats.commands}",
                  flush=True)
        reason = loop.drive(laps, timeout_s, report)
        return score_dict(loop.scorer.result(), loop.stats, loop.elapsed(), loop.cpu_seconds(), model=model,
                          backend=backend if model != EXPERT else EXPERT, mode="graph", board=board,
                          stop_reason=reason, params=params or {})
    finally:
        loop.close()


def drive_direct(model: str, backend: str, laps: int, timeout_s: float, track_shape: str = "oval",
                 fps: float = 30.0, replan_every: int = 3) -> dict:
    """World + renderer + runner in one loop, simulated time (no ROS, no bridge): deterministic."""
    import numpy as np

    from edge_inference.core.pwm_mapping import Calibration
    from edge_inference.sim.demonstrations import calibrated
    from edge_inference.sim.expert import PurePursuitExpert
    from edge_inference.sim.render import Renderer
    from edge_inference.sim.score import LapScorer
    from edge_inference.sim.track import TrackConfig
    from edge_inference.sim.world import World

    world = World(TrackConfig(shape=track_shape))
    renderer = Renderer(world.track)
    cal = Calibration().validate()
    scorer, stats = LapScorer(world.track), RunStats()
    runner = expert = None
    if model == EXPERT:
        expert = PurePursuitExpert(world.track, world.vehicle)
    else:
        from edge_inference.backends.runners import create_policy_runner
        runner = create_policy_runner(model, backend)
    dt, substeps = 1.0 / fps, 3
    applied, chunk, k = (0.0, 0.0), None, 0
    reason = "timeout"
    off_steps = 0
    for step in range(int(timeout_s * fps)):
        s = world.state
        if expert is not None:
            cmd = expert.act(s)
        else:
            if chunk is None or k >= replan_every or k >= len(chunk):
                t = time.perf_counter()
                chunk = runner.predict(renderer.render(s.x, s.y, s.yaw), np.array(applied, np.float32))
                stats.inference_latency_ms.append((time.perf_counter() - t) * 1e3)
                stats.model_latency_ms.append(stats.inference_latency_ms[-1])
                stats.chunks += 1
                k = 0
            cmd = (float(chunk[k][0]), float(chunk[k][1]))
            k += 1
        stats.commands += 1
        applied = calibrated(cal, max(-1.0, min(1.0, cmd[0])), max(-1.0, min(1.0, cmd[1])))
        for _ in range(substeps):
            world.step(*applied, dt / substeps)
        scorer.update(world.state.x, world.state.y, world.t)
        off_steps = off_steps + 1 if scorer.off_track else 0
        if scorer.laps >= laps:
            reason = "laps completed"
            break
        if off_steps > 4 * fps:
            reason = "off track for more than 4 s"
            break
    if runner is not None:
        runner.close()
    stats.command_latency_ms = list(stats.inference_latency_ms)  # no transport in direct mode
    return score_dict(scorer.result(), stats, world.t, model=model, backend=backend if runner else EXPERT,
                      mode="direct", stop_reason=reason)


def print_table(rows: list[dict], title: str = "closed-loop score") -> None:
    cols = [("model", "backend", 18), ("laps", "laps_completed", 5), ("off-track", "off_track_events", 9),
            ("CTE mean m", "mean_cte_m", 10), ("CTE max m", "max_cte_m", 9), ("rate Hz", "control_rate_hz", 8),
            ("e2e p50 ms", ("e2e_latency_ms", "p50"), 10), ("e2e p95 ms", ("e2e_latency_ms", "p95"), 10),
            ("chunk p50 ms", ("inference_latency_ms", "p50"), 12), ("model p50 ms", ("model_latency_ms", "p50"), 12),
            ("calls/s", "model_calls_per_s", 7), ("CPU s/s", "cpu_s_per_s", 7)]
    print(f"\n=== {title} ===")
    print("  ".join(f"{name:>{w}}" for name, _, w in cols))
    for r in rows:
        cells = []
        for _, key, w in cols:
            v = r.get(key[0], {}).get(key[1]) if isinstance(key, tuple) else r.get(key)
            cells.append(f"{'-' if v is None else (f'{v:.3f}' if isinstance(v, float) else v):>{w}}")
        print("  ".join(cells))
