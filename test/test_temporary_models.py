"""Temporary (numpy-only) models: the runner contract, their rules, and closed-loop driving in the simulator."""
from __future__ import annotations

import numpy as np
import pytest

from edge_inference.camera_sources import SyntheticSource
from edge_inference.temporary_models import TemporaryBehaviorRunner, TemporaryPolicyRunner


def test_temporary_policy_follows_the_synthetic_road():
    """The heuristic steers toward the road: a left-shifted road gives positive (left) steering."""
    src = SyntheticSource(320, 180, 30.0)
    src.open()
    frame = src.read()
    runner = TemporaryPolicyRunner(chunk_size=16)
    chunk = runner.predict(frame, np.zeros(2))
    assert chunk.shape == (16, 2) and chunk.dtype == np.float32 and np.isfinite(chunk).all()
    assert abs(chunk[-1, 0]) < 0.2  # centred road: about straight
    left = np.roll(frame, -60, axis=1)  # road now left of centre
    right = np.roll(frame, 60, axis=1)
    assert runner.predict(left, np.zeros(2))[-1, 0] > 0.2
    assert runner.predict(right, np.zeros(2))[-1, 0] < -0.2
    # the chunk starts from the applied steering (ACT state) and ramps to the target
    ramp = runner.predict(left, np.array([-0.5, 0.0]))[:, 0]
    assert ramp[0] < ramp[-1] and np.all(np.diff(ramp) >= -1e-6)
    assert {"chunk_size", "action_dim", "dt", "action_names", "backend_name", "model_hash"} <= set(dir(runner))
    with pytest.raises(ValueError, match="state"):
        runner.predict(frame, np.zeros(3))


def test_temporary_behavior_runner_contract_and_rules():
    runner = TemporaryBehaviorRunner(["stationary", "driving", "turning", "bumpy", "other"])
    still = np.zeros((100, 9))
    still[:, 2] = 9.81
    probs, code = runner.predict(still)
    assert probs.shape == (5,) and abs(probs.sum() - 1) < 1e-5 and code == -1
    assert runner.class_names[int(np.argmax(probs))] == "stationary"
    turning = still.copy()
    turning[:, 5] = 1.0  # 1 rad/s yaw
    assert runner.class_names[int(np.argmax(runner.predict(turning)[0]))] == "turning"
    bumpy = still.copy()
    bumpy[::2, 2] += 4.0
    assert runner.class_names[int(np.argmax(runner.predict(bumpy)[0]))] == "bumpy"
    with pytest.raises(ValueError, match="window"):
        runner.predict(np.zeros((50, 9)))
    nan = still.copy()
    nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        runner.predict(nan)


def test_temporary_policy_drives_the_simulated_track_closed_loop():
    """Rendered camera -> temporary policy -> bicycle model for 15 s: stays in the lane."""
    from edge_inference.sim.render import Renderer
    from edge_inference.sim.score import LapScorer
    from edge_inference.sim.world import World

    world = World()
    renderer = Renderer(world.track)
    scorer = LapScorer(world.track)
    policy = TemporaryPolicyRunner()
    state = np.zeros(2)
    for _ in range(15 * 30):
        chunk = policy.predict(renderer.render(world.state.x, world.state.y, world.state.yaw), state)
        state = chunk[1].astype(np.float64)  # action for the next tick, as the scheduler would pick it
        world.step(float(state[0]), float(state[1]), 1.0 / 30.0)
        scorer.update(world.state.x, world.state.y, world.t)
    score = scorer.result()
    assert score.off_track_events == 0
    assert score.mean_cte_m < 0.15 and score.distance_m > 8.0
