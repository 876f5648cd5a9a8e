"""Predicted path of a chunk (bicycle model) and its MarkerArray."""
import math

import numpy as np
import pytest

from edge_inference.core.path_prediction import PathModelConfig, action_indices, chunk_actions, integrate_chunk
from edge_inference.ros.markers import COMMAND_ID, PATH_ID, build_marker_array
from edge_inference.sim.dynamics import VehicleConfig, command_to_targets

CFG = PathModelConfig(wheelbase_m=0.26, max_steer_rad=0.42, max_speed_mps=3.0, max_reverse_mps=1.0)


def test_straight_chunk_goes_straight_ahead_at_commanded_speed():
    actions = np.tile([0.0, 0.5], (20, 1))           # 1.5 m/s for 20 x 0.05 s = 1.5 m
    poses = integrate_chunk(actions, 0.05, CFG)
    assert poses.shape == (21, 3)
    np.testing.assert_allclose(poses[-1], [1.5, 0.0, 0.0], atol=1e-12)
    assert np.all(np.diff(poses[:, 0]) > 0)


def test_constant_left_turn_lies_on_the_bicycle_circle():
    actions = np.tile([1.0, 0.5], (40, 1))
    poses = integrate_chunk(actions, 0.05, CFG)
    radius = CFG.wheelbase_m / math.tan(CFG.max_steer_rad)   # circle centred at (0, R)
    dist = np.hypot(poses[:, 0], poses[:, 1] - radius)
    np.testing.assert_allclose(dist, radius, atol=1e-9)
    assert poses[-1, 2] == pytest.approx(1.5 * 40 * 0.05 / radius)  # yaw = arc length / R
    assert np.all(poses[1:, 1] > 0)                                # +steering turns left (+y)


def test_right_turn_mirrors_left_turn_and_dt_does_not_change_the_circle():
    left = integrate_chunk(np.tile([0.6, 0.4], (10, 1)), 0.1, CFG)
    right = integrate_chunk(np.tile([-0.6, 0.4], (10, 1)), 0.1, CFG)
    np.testing.assert_allclose(right[:, 1], -left[:, 1], atol=1e-12)
    fine = integrate_chunk(np.tile([0.6, 0.4], (100, 1)), 0.01, CFG)
    np.testing.assert_allclose(fine[-1], left[-1], atol=1e-9)


def test_matches_the_simulator_arc_and_reverse_speed():
    delta, v = command_to_targets(VehicleConfig(), 0.3, 0.8)
    poses = integrate_chunk(np.array([[0.3, 0.8]]), 0.2, CFG)
    r = VehicleConfig().wheelbase_m / math.tan(delta)
    yaw = v * 0.2 / r
    np.testing.assert_allclose(poses[1], [r * math.sin(yaw), r * (1 - math.cos(yaw)), yaw], atol=1e-12)
    back = integrate_chunk(np.array([[0.0, -1.0]]), 1.0, CFG)
    assert back[1, 0] == pytest.approx(-1.0)   # max_reverse_mps


def test_bad_chunks_raise_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        integrate_chunk(np.array([[np.nan, 0.1]]), 0.1, CFG)
    with pytest.raises(ValueError, match="dt"):
        integrate_chunk(np.zeros((3, 2)), 0.0, CFG)
    with pytest.raises(ValueError, match="no column"):
        integrate_chunk(np.zeros((3, 1)), 0.1, CFG)
    with pytest.raises(ValueError, match="wheelbase"):
        PathModelConfig(wheelbase_m=0.0)


def test_chunk_message_shape_is_checked_and_names_pick_columns():
    from edge_inference_msgs.msg import ActionChunk
    msg = ActionChunk(horizon=3, action_dim=2, actions=[0.0, 1.0, 0.1, 1.0, 0.2, 1.0])
    assert chunk_actions(msg).shape == (3, 2)
    msg.horizon = 4
    with pytest.raises(ValueError, match="4x2"):
        chunk_actions(msg)
    assert action_indices(["throttle", "steering"]) == (1, 0)
    assert action_indices([]) == (0, 1)


def test_marker_array_has_path_strip_and_command_arrow_in_base_frame():
    from std_msgs.msg import Header
    from visualization_msgs.msg import Marker
    poses = integrate_chunk(np.tile([0.5, 0.5], (10, 1)), 0.05, CFG)
    header = Header(frame_id="base_link")
    arr = build_marker_array(header, CFG, poses=poses, command=(0.5, 0.5))
    by_id = {m.id: m for m in arr.markers}
    path, arrow = by_id[PATH_ID], by_id[COMMAND_ID]
    assert path.type == Marker.LINE_STRIP and path.header.frame_id == "base_link" and len(path.points) == 11
    assert path.points[-1].x == pytest.approx(poses[-1, 0]) and path.points[-1].y == pytest.approx(poses[-1, 1])
    assert arrow.type == Marker.ARROW
    tip = arrow.points[1]
    assert math.atan2(tip.y, tip.x) == pytest.approx(0.5 * CFG.max_steer_rad)   # points along the wheels
    assert math.hypot(tip.x, tip.y) == pytest.approx(1.5 * 0.5)                 # 1.5 m/s over 0.5 s
    empty = build_marker_array(header, CFG)
    assert {m.action for m in empty.markers} == {Marker.DELETE}
