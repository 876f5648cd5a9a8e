"""Heuristic (numpy-only) stand-in models: the runner contract, their rules, and closed-loop driving in the simulator."""
from __future__ import annotations

import numpy as np
import pytest

from edge_inference.backends.heuristic import HeuristicBehaviorRunner, HeuristicPolicyRunner
from edge_inference.devices.camera_sources import SyntheticSource
from edge_inference.sim.behaviors import BEHAVIOR_CLASSES
from edge_inference.sim.demonstrations import imu_windows


def test_heuristic_policy_follows_the_synthetic_road():
    """The heuristic steers toward the road: a left-shifted road gives positive (left) steering."""
    src = SyntheticSource(320, 180, 30.0)
    src.open()
    frame = src.read()
    runner = HeuristicPolicyRunner(chunk_size=16)
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


def window_of(speed=0.0, yaw_rate=0.0, forward=0.0, seed=0):
    """(100, 9) IMU window of a steady motion, with the simulator's noise model (vibration grows with speed)."""
    rng = np.random.default_rng(seed)
    w = np.zeros((100, 9))
    w[:, 0] = forward
    w[:, 1] = speed * yaw_rate  # centripetal, m/s²
    w[:, 2] = 9.80665
    w[:, :3] += rng.normal(0, 0.08 + 0.15 * speed, (100, 3))
    w[:, 5] = yaw_rate + rng.normal(0, 0.005, 100)
    return w


def test_heuristic_behavior_runner_contract_and_rules():
    runner = HeuristicBehaviorRunner(list(BEHAVIOR_CLASSES) + ["other"])
    probs, code = runner.predict(window_of())
    assert probs.shape == (8,) and abs(probs.sum() - 1) < 1e-5 and code == -1
    assert probs[-1] < 0.01  # a name the rules do not know
    label = lambda **kw: runner.class_names[int(np.argmax(runner.predict(window_of(**kw))[0]))]  # noqa: E731
    assert label() == "stationary"
    assert label(speed=0.5) == "straight_slow"
    assert label(speed=1.3) == "straight_medium"
    assert label(speed=2.5) == "straight_fast"
    assert label(speed=1.0, yaw_rate=0.8) == "turn_left"
    assert label(speed=1.0, yaw_rate=-0.8) == "turn_right"
    braking = window_of(speed=2.0)
    braking[60:75, 0] -= 5.0  # 0.3 s at -5 m/s²
    assert runner.class_names[int(np.argmax(runner.predict(braking)[0]))] == "sudden_stop"
    with pytest.raises(ValueError, match="window"):
        runner.predict(np.zeros((50, 9)))
    nan = window_of()
    nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        runner.predict(nan)


def test_heuristic_behavior_rules_label_simulated_drives():
    """Windows of two scripted simulator drives (IMU noise, biases, vibration) against true motion labels."""
    data = imu_windows(n_drives=2, seed=5)
    runner = HeuristicBehaviorRunner()
    predicted = np.array([runner.class_names[int(np.argmax(runner.predict(w)[0]))] for w in data["windows"]])
    accuracy = float((predicted == data["labels"]).mean())
    print(f"heuristic behavior rules: accuracy {accuracy:.3f} on {len(predicted)} simulated windows")
    assert accuracy >= 0.88
    assert set(data["labels"]) == set(BEHAVIOR_CLASSES)  # every behavior was in the test


def test_heuristic_policy_drives_the_simulated_track_closed_loop():
    """Rendered camera -> heuristic policy -> bicycle model for 15 s: stays in the lane."""
    from edge_inference.sim.render import Renderer
    from edge_inference.sim.score import LapScorer
    from edge_inference.sim.world import World

    world = World()
    renderer = Renderer(world.track)
    scorer = LapScorer(world.track)
    policy = HeuristicPolicyRunner()
    state = np.zeros(2)
    for _ in range(15 * 30):
        chunk = policy.predict(renderer.render(world.state.x, world.state.y, world.state.yaw), state)
        state = chunk[1].astype(np.float64)  # action for the next tick, as the scheduler would pick it
        world.step(float(state[0]), float(state[1]), 1.0 / 30.0)
        scorer.update(world.state.x, world.state.y, world.t)
    score = scorer.result()
    assert score.off_track_events == 0
    assert score.mean_cte_m < 0.15 and score.distance_m > 8.0


def test_heuristic_is_chosen_through_the_backend_registry_like_any_other():
    from edge_inference.backends import BACKEND_NAMES, HEURISTIC, BackendError, create_backend
    from edge_inference.backends.runners import create_behavior_runner, create_policy_runner

    assert HEURISTIC in BACKEND_NAMES and {"onnxruntime-int8", "hailo"} <= set(BACKEND_NAMES)
    policy = create_policy_runner("", HEURISTIC, heuristic={"chunk_size": 4, "dt": 0.05})
    assert isinstance(policy, HeuristicPolicyRunner) and (policy.chunk_size, policy.dt) == (4, 0.05)
    behavior = create_behavior_runner("", HEURISTIC, heuristic={"window_length": 50})
    assert isinstance(behavior, HeuristicBehaviorRunner) and behavior.window_length == 50
    with pytest.raises(BackendError, match="needs model_path"):
        create_policy_runner("", "onnxruntime-int8")
    with pytest.raises(BackendError, match="runs no model file"):
        create_backend(HEURISTIC, "anything")
