"""The simulator's pure core: geometry, dynamics, IMU, expert, behavior labels (no ROS)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edge_inference.sim.behaviors import BEHAVIOR_CLASSES, BehaviorRules, instant_label, scripted_drive, window_label
from edge_inference.sim.dynamics import CarState, VehicleConfig, command_to_targets, step, turning_radius
from edge_inference.sim.expert import PurePursuitExpert
from edge_inference.sim.imu_model import GRAVITY, ImuConfig, ImuModel, ideal_reading
from edge_inference.sim.render import CameraConfig, LightingConfig, Renderer
from edge_inference.sim.score import LapScorer
from edge_inference.sim.track import Track, TrackConfig, TrackError


def _line_columns(img: np.ndarray, row: int) -> np.ndarray:
    """Columns of bright, unsaturated (white lane-edge) pixels in one row."""
    px = img[row].astype(int)
    return np.nonzero((px.min(1) > 200) & (px.max(1) - px.min(1) < 30))[0]


@pytest.fixture(scope="module")
def straight_view():
    track = Track(TrackConfig(shape="oval", straight_m=40.0, radius_m=3.0))
    cam = CameraConfig(width=320, height=180, max_range_m=8.0)
    r = Renderer(track, cam, LightingConfig(texture_strength=0.0))
    x, y, yaw = track.start_pose()
    return track, r, x, y, yaw


def test_straight_lane_is_centered_and_symmetric(straight_view):
    track, r, x, y, yaw = straight_view
    img = r.render(x, y, yaw)
    assert img.shape == (180, 320, 3) and img.dtype == np.uint8
    checked = 0
    for row in range(40, 120, 10):
        cols = _line_columns(img, row)
        assert len(cols) >= 2, f"row {row}: no lane edges visible"
        left, right = cols.min(), cols.max()
        assert abs((left + right) / 2 - 159.5) < 2.0, f"row {row}: lane centre at {(left + right) / 2}"
        checked += 1
    assert checked == 8
    # the left and right halves mirror each other (same scene content)
    diff = np.abs(img[60:].astype(int) - img[60:, ::-1].astype(int)).mean()
    assert diff < 6.0
    # the lane widens toward the bottom (perspective)
    w_far = np.ptp(_line_columns(img, 50))
    w_near = np.ptp(_line_columns(img, 110))
    assert w_near > 1.5 * w_far


def test_offset_car_sees_lane_shifted_the_other_way(straight_view):
    track, r, x, y, yaw = straight_view
    centred = _line_columns(r.render(x, y, yaw), 100)
    shifted = _line_columns(r.render(x, y + 0.2, yaw), 100)  # 0.2 m left of the centerline
    assert shifted.min() > centred.min() + 30  # the left edge line moves right in the image
    assert shifted.max() < 200                  # and the right edge leaves the view


def test_render_size_limits():
    with pytest.raises(ValueError, match="render size"):
        CameraConfig(width=1280, height=720)
    r = Renderer(Track(), CameraConfig(width=640, height=360))
    assert r.render(*Track().start_pose()).shape == (360, 640, 3)


def test_lighting_variation_changes_appearance_not_geometry(straight_view):
    track, r, x, y, yaw = straight_view
    dark = Renderer(track, r.cam, LightingConfig(gain=0.7, texture_strength=0.0))
    a, b = r.render(x, y, yaw).astype(float), dark.render(x, y, yaw).astype(float)
    assert b.mean() < 0.8 * a.mean()


@pytest.mark.parametrize("steering", [0.3, -0.7, 1.0])
def test_constant_steering_drives_a_circle_of_predicted_radius(steering):
    veh = VehicleConfig()
    steer, speed = command_to_targets(veh, steering, 0.4)
    s = CarState()
    for _ in range(300):  # settle servo and motor (3 s)
        s = step(veh, s, steer, speed, 0.01)
    pts = []
    for _ in range(800):
        s = step(veh, s, steer, speed, 0.01)
        pts.append((s.x, s.y))
    pts = np.array(pts)
    R = turning_radius(veh, steer)
    # algebraic circle fit: x² + y² + D x + E y + F = 0
    A = np.column_stack([pts[:, 0], pts[:, 1], np.ones(len(pts))])
    D, E, F = np.linalg.lstsq(A, -(pts ** 2).sum(1), rcond=None)[0]
    fitted = math.sqrt(D * D / 4 + E * E / 4 - F)
    assert fitted == pytest.approx(R, rel=1e-3)
    centre = np.array([-D / 2, -E / 2])
    # the centre lies on the side we steer to: left of the car for positive steering
    to_centre = centre - pts[-1]
    left = np.array([-math.sin(s.yaw), math.cos(s.yaw)])
    assert np.sign(to_centre @ left) == np.sign(steering)


def test_bad_commands_are_rejected():
    with pytest.raises(ValueError, match="non-finite"):
        command_to_targets(VehicleConfig(), float("nan"), 0.0)
    with pytest.raises(ValueError, match="dt"):
        step(VehicleConfig(), CarState(), 0.0, 0.0, 0.0)


def test_gyro_z_equals_yaw_rate_and_accel_matches_motion():
    veh, imu = VehicleConfig(), ImuModel(ImuConfig(), seed=1)
    s = CarState(v=1.0)
    gyro_z, yaw_rate, acc_y, centripetal = [], [], [], []
    for i in range(500):
        steering = 0.6 * math.sin(i / 50)
        s = step(veh, s, *command_to_targets(veh, steering, 0.5), 0.02)
        ideal = ideal_reading(s)
        assert ideal.gyro[2] == s.yaw_rate
        assert ideal.accel[2] == GRAVITY
        m = imu.read(s)
        gyro_z.append(m.gyro[2])
        yaw_rate.append(s.yaw_rate)
        acc_y.append(m.accel[1])
        centripetal.append(s.v * s.yaw_rate)
        # magnetometer heading tracks the yaw (ENU field points north = +y)
        mag_heading = math.atan2(ideal.mag[0], ideal.mag[1])
        assert math.isclose(math.remainder(mag_heading - s.yaw, 2 * math.pi), 0.0, abs_tol=1e-9)
    gyro_z, yaw_rate = np.array(gyro_z), np.array(yaw_rate)
    err = gyro_z - yaw_rate
    assert abs(err.mean()) < 0.01 and err.std() < 0.01          # noise + bias only
    assert np.corrcoef(acc_y, centripetal)[0, 1] > 0.9
    assert np.ptp(yaw_rate) > 1.0                                 # the test really turned


def test_track_locate_signs_and_wraps():
    tr = Track(TrackConfig(shape="oval"))
    x, y, yaw = tr.start_pose()
    left = tr.locate(x, y + 0.3)           # start heads +x: +y is left
    right = tr.locate(x, y - 0.2)
    assert left.cte_m == pytest.approx(0.3, abs=1e-6)
    assert right.cte_m == pytest.approx(-0.2, abs=1e-6)
    assert tr.locate(*tr.point_at(tr.length - 0.1)).s_m == pytest.approx(tr.length - 0.1, abs=1e-6)
    with pytest.raises(TrackError, match="unknown track shape"):
        TrackConfig(shape="hexagon")
    with pytest.raises(TrackError, match="radius"):
        TrackConfig(radius_m=0.3, width_m=0.9)


@pytest.mark.parametrize("shape", ["oval", "bean"])
def test_expert_drives_a_clean_lap(shape):
    tr = Track(TrackConfig(shape=shape))
    veh = VehicleConfig()
    ex = PurePursuitExpert(tr, veh)
    s = CarState(*tr.start_pose())
    sc = LapScorer(tr)
    dt = 1 / 30
    for i in range(int(1.2 * tr.length / ex.cfg.cruise_mps / dt)):
        s = step(veh, s, *command_to_targets(veh, *ex.act(s)), dt)
        sc.update(s.x, s.y, i * dt)
    r = sc.result()
    assert r.laps_completed >= 1 and r.off_track_events == 0 and r.first_lap_clean
    assert r.max_cte_m < 0.15


def test_scorer_counts_off_track_events_and_no_laps_backwards():
    tr = Track()
    sc = LapScorer(tr)
    x, y, _ = tr.start_pose()
    for i in range(50):  # drive backwards along the straight, leaving the lane twice
        off = 0.8 if i in range(10, 15) or i in range(30, 35) else 0.0
        sc.update(x - 0.05 * i, y + off, i * 0.1)
    r = sc.result()
    assert r.off_track_events == 2 and r.laps_completed == 0 and r.distance_m < 0


def test_behavior_labels_from_motion():
    rules = BehaviorRules()
    assert instant_label(rules, 0.0, 0.0, 0.0) == "stationary"
    assert instant_label(rules, 0.5, 0.0, 0.0) == "straight_slow"
    assert instant_label(rules, 1.2, 0.0, 0.0) == "straight_medium"
    assert instant_label(rules, 2.5, 0.1, 0.0) == "straight_fast"
    assert instant_label(rules, 1.0, 0.8, 0.0) == "turn_left"
    assert instant_label(rules, 1.0, -0.8, 0.0) == "turn_right"
    assert instant_label(rules, 2.0, 0.0, -5.0) == "sudden_stop"
    assert window_label(["turn_left"] * 8 + ["sudden_stop"] + ["stationary"]) == "sudden_stop"
    assert window_label(["turn_left"] * 5 + ["stationary"] * 5, min_purity=0.8) is None
    with pytest.raises(ValueError, match="lack"):
        BehaviorRules(class_names=("stationary", "driving"))


def test_scripted_drive_produces_every_behavior():
    veh = VehicleConfig()
    rules = BehaviorRules()
    segs = scripted_drive(np.random.default_rng(0), n_segments=30)
    s, seen = CarState(), set()
    for seg in segs:
        for _ in range(int(seg.duration_s / 0.02)):
            s = step(veh, s, *command_to_targets(veh, seg.steering, seg.throttle), 0.02)
            seen.add(instant_label(rules, s.v, s.yaw_rate, s.accel))
    assert seen == set(BEHAVIOR_CLASSES)
