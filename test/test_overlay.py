"""Overlay drawing and the ground-to-image projection behind it."""
import math

import numpy as np
import pytest

from edge_inference.core.overlay import (
    PATH_RGB,
    CameraMountConfig,
    OverlayContent,
    draw_overlay,
    intrinsics_from_fov,
    project_points,
    quaternion_rpy,
    rotation_rpy,
    steering_gauge_geometry,
    throttle_gauge_geometry,
)
from edge_inference.core.path_prediction import PathModelConfig, integrate_chunk

W, H = 320, 180
K = intrinsics_from_fov(W, H, 90.0)
MOUNT = CameraMountConfig()  # 0.20 m ahead, 0.25 m up, pitched 0.349 rad down
PATH_CFG = PathModelConfig()


def test_ground_point_ahead_projects_on_centre_column_at_the_pitch_geometry():
    d = 2.0
    uv, valid = project_points(np.array([[d, 0.0, 0.0]]), K, MOUNT)
    below = math.atan2(MOUNT.camera_z_m, d - MOUNT.camera_x_m) - MOUNT.camera_pitch_rad  # angle below optical axis
    assert valid[0]
    assert uv[0, 0] == pytest.approx(W / 2)
    assert uv[0, 1] == pytest.approx(H / 2 + K[1, 1] * math.tan(below))


def test_left_points_project_left_and_points_behind_are_invalid():
    uv, valid = project_points(np.array([[2.0, 0.5, 0.0], [2.0, -0.5, 0.0], [-1.0, 0.0, 0.0]]), K, MOUNT)
    assert uv[0, 0] < W / 2 < uv[1, 0]
    assert list(valid) == [True, True, False]


def test_rotation_and_quaternion_agree():
    r, p, y = 0.1, 0.349, -0.3
    qx, qy, qz, qw = quaternion_rpy(r, p, y)
    R_q = np.array([[1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
                    [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
                    [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)]])
    np.testing.assert_allclose(R_q, rotation_rpy(r, p, y), atol=1e-12)


def _path_pixels(img):
    return np.argwhere(np.all(img == np.array(PATH_RGB, dtype=np.uint8), axis=2))  # (N, 2) rows, cols


def test_predicted_path_is_drawn_where_the_chunk_goes():
    frame = np.zeros((H, W, 3), np.uint8)
    straight = integrate_chunk(np.tile([0.0, 0.5], (30, 1)), 0.05, PATH_CFG)
    left = integrate_chunk(np.tile([1.0, 0.5], (30, 1)), 0.05, PATH_CFG)
    px_s = _path_pixels(draw_overlay(frame, OverlayContent(path_base=straight), K, MOUNT))
    px_l = _path_pixels(draw_overlay(frame, OverlayContent(path_base=left), K, MOUNT))
    assert len(px_s) > 50 and len(px_l) > 50
    assert abs(np.median(px_s[:, 1]) - W / 2) < 3          # straight: centre column
    assert np.median(px_l[:, 1]) < W / 2 - 20               # left turn: left half
    assert frame.sum() == 0                                  # input untouched


def test_gauges_fill_toward_the_command():
    frame = np.zeros((H, W, 3), np.uint8)
    x0, x1, y0, y1 = steering_gauge_geometry(W, H)
    tx0, tx1, ty0, ty1 = throttle_gauge_geometry(W, H)
    img = draw_overlay(frame, OverlayContent(steering=1.0, throttle=0.5), K, MOUNT)
    row = img[(y0 + y1) // 2]
    yellow = np.all(row == (255, 200, 0), axis=1)
    assert yellow[x0 + 2: (x0 + x1) // 2 - 2].all() and not yellow[(x0 + x1) // 2 + 2: x1].any()  # +steer = left
    col = img[:, (tx0 + tx1) // 2]
    green = np.all(col == (40, 220, 60), axis=1)
    yc = (ty0 + ty1) // 2
    quarter = (ty1 - ty0) // 4
    assert green[yc - quarter + 2: yc - 1].all() and not green[yc + 2: ty1].any()  # half throttle fills half of the top
    img_r = draw_overlay(frame, OverlayContent(steering=-1.0, throttle=-1.0), K, MOUNT)
    assert np.all(img_r[(y0 + y1) // 2, (x0 + x1) // 2 + 5] == (255, 200, 0))
    assert np.all(img_r[ty1 - 2, (tx0 + tx1) // 2] == (230, 50, 30))


def test_text_changes_with_label_and_latency_and_bad_frames_raise():
    frame = np.full((H, W, 3), 90, np.uint8)
    a = draw_overlay(frame, OverlayContent(behavior_label="walking", behavior_confidence=0.9, latency_ms=12.0), K, MOUNT)
    b = draw_overlay(frame, OverlayContent(behavior_label="sitting", behavior_confidence=0.9, latency_ms=12.0), K, MOUNT)
    c = draw_overlay(frame, OverlayContent(behavior_label="walking", behavior_confidence=0.9, latency_ms=99.0), K, MOUNT)
    top = slice(0, H // 2)
    assert (a[top] != b[top]).any() and (a[top] != c[top]).any()
    with pytest.raises(ValueError, match="uint8"):
        draw_overlay(np.zeros((H, W, 3), np.float32), OverlayContent(), K, MOUNT)
    with pytest.raises(ValueError, match="hfov"):
        intrinsics_from_fov(W, H, 180.0)


def test_projected_path_lies_on_the_simulator_lane_centre_line():
    """The overlay geometry agrees with an independent renderer: the sim car's camera at the same mount."""
    from edge_inference.sim.render import CameraConfig, Renderer
    from edge_inference.sim.track import Track
    track = Track()
    cam = CameraConfig()
    mount = CameraMountConfig(camera_x_m=cam.cam_x_m, camera_z_m=cam.cam_height_m,
                              camera_pitch_rad=math.radians(cam.pitch_deg))
    K_sim = intrinsics_from_fov(cam.width, cam.height, cam.hfov_deg)
    s_grid = np.linspace(0.0, track.length, 400)
    kappa = np.array([track.curvature_at(s) for s in s_grid])
    for s0, k in ((s_grid[np.argmax(np.abs(kappa))] - 1.0, None), (s_grid[np.argmin(np.abs(kappa))], 0.0)):
        k = kappa[np.argmax(np.abs(kappa))] if k is None else k   # entering the bend / on a straight
        x, y = track.point_at(s0)
        rgb = Renderer(track, cam).render(float(x), float(y), track.heading_at(s0))
        steer = math.atan(k * PATH_CFG.wheelbase_m) / PATH_CFG.max_steer_rad   # the circle of the lane
        poses = integrate_chunk(np.tile([steer, 0.3], (60, 1)), 1 / 30, PATH_CFG)
        near = poses[(poses[:, 0] > 0.8) & (poses[:, 0] < 2.5)]
        uv, valid = project_points(np.column_stack([near[:, :2], np.zeros(len(near))]), K_sim, mount)
        yellow = (rgb[..., 0] > 150) & (rgb[..., 1] > 120) & (rgb[..., 2] < 110)   # centre line paint
        hits = checked = 0
        for (u, v), ok in zip(uv, valid):
            row = int(round(v))
            cols = np.flatnonzero(yellow[row]) if ok and 0 <= row < cam.height else []
            if len(cols):                     # rows between the dashes have no paint to compare with
                checked += 1
                hits += bool(np.min(np.abs(cols - u)) <= 4)
        assert checked >= 8
        assert hits / checked >= 0.9, f"path on the centre line at {hits}/{checked} rows (curvature {k:.2f})"
