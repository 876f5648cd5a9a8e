"""Expert demonstrations and labelled IMU windows generated in the simulator.

Driving episodes use DART-style noise injection: the car executes the expert's
command plus a slowly varying steering disturbance while the *label* is the
expert's clean command, and episodes start off-centre, so the dataset shows how
to recover, not only how to stay centred. Images are rendered at the camera
size and resized with INTER_AREA exactly as the policy runner's preprocessing
does. The state is the command the board applied (normalized, after the PWM
calibration round trip), as the policy node sees it in `vehicle/state`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from edge_inference.core.pwm_mapping import Calibration
from edge_inference.sim.behaviors import BEHAVIOR_CLASSES, BehaviorRules, instant_label, scripted_drive, window_label
from edge_inference.sim.expert import ExpertConfig, PurePursuitExpert
from edge_inference.sim.imu_model import ImuConfig
from edge_inference.sim.render import CameraConfig, LightingConfig, Renderer
from edge_inference.sim.track import TrackConfig
from edge_inference.sim.world import World

ACTION_NAMES = ("steering", "throttle")


@dataclass
class DemoConfig:
    episodes: int = 12
    seconds: float = 40.0                     # per episode, s
    fps: float = 30.0                         # control / frame rate, Hz
    physics_substeps: int = 3
    camera_size: tuple[int, int] = (180, 320)  # (H, W) rendered, px
    image_size: tuple[int, int] = (72, 128)    # (H, W) stored for training, px
    steer_noise: float = 0.25                  # std of the injected steering disturbance (normalized)
    noise_tau_s: float = 0.6                   # its correlation time, s
    shapes: tuple[str, ...] = ("oval", "bean")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.seconds <= 0 or self.fps <= 0 or self.physics_substeps < 1:
            raise ValueError("episodes, seconds, fps and physics_substeps must be positive")


@dataclass
class Frame:
    """One control step of an episode (what gets recorded)."""

    t_s: float
    camera_rgb: np.ndarray      # (H, W, 3) uint8 at camera size
    state: np.ndarray           # (2,) applied [steering, throttle]
    action: np.ndarray          # (2,) expert [steering, throttle]
    executed: np.ndarray        # (2,) what was sent (action + noise)
    pose: tuple[float, float, float]
    imu_rows: list              # [(t_s, (9,) row)] IMU samples since the previous frame
    behavior: str


def calibrated(cal: Calibration, steering: float, throttle: float) -> tuple[float, float]:
    """What the board applies for a normalized command: the PWM µs round trip (deadband, rounding)."""
    return (cal.steering.to_normalized(cal.steering.to_us(steering)),
            cal.throttle.to_normalized(cal.throttle.to_us(throttle)))


def episode_setup(cfg: DemoConfig, episode: int, rng: np.random.Generator):
    """Track, lighting, expert settings and start offset of one episode (episode 0: the default world)."""
    if episode == 0:
        return TrackConfig(), LightingConfig(), ExpertConfig(), (0.0, 0.0, 0.0)
    shape = cfg.shapes[episode % len(cfg.shapes)]
    track = TrackConfig(shape=shape, width_m=float(rng.uniform(0.8, 1.0)),
                        straight_m=float(rng.uniform(4.0, 8.0)), radius_m=float(rng.uniform(2.2, 3.0)))
    expert = ExpertConfig(cruise_mps=float(rng.uniform(1.2, 1.8)))
    start = (float(rng.uniform(0, 30.0)), float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.25, 0.25)))
    return track, LightingConfig.random(rng), expert, start


def run_episode(cfg: DemoConfig, episode: int, calibration: Calibration | None = None,
                on_frame: Callable[[Frame], None] | None = None) -> dict[str, np.ndarray]:
    """Drive one noisy-expert episode; returns arrays images (N,h,w,3), states, actions (N,2)."""
    rng = np.random.default_rng([cfg.seed, episode])
    cal = calibration or Calibration().validate()
    track_cfg, lighting, expert_cfg, (s0, d0, yaw0) = episode_setup(cfg, episode, rng)
    world = World(track_cfg, imu=ImuConfig(), seed=cfg.seed * 1000 + episode)
    track = world.track
    px, py = track.point_at(s0)
    h = track.heading_at(s0)
    world.reset(px - math.sin(h) * d0, py + math.cos(h) * d0, h + yaw0)
    ch, cw = cfg.camera_size
    renderer = Renderer(track, CameraConfig(width=cw, height=ch), lighting)
    expert = PurePursuitExpert(track, world.vehicle, expert_cfg)
    dt = 1.0 / cfg.fps
    noise, alpha = 0.0, math.exp(-dt / cfg.noise_tau_s)
    applied = (0.0, 0.0)
    images, states, actions = [], [], []
    for k in range(int(cfg.seconds * cfg.fps)):
        s = world.state
        cam = renderer.render(s.x, s.y, s.yaw)
        action = np.array(expert.act(s), np.float32)
        noise = alpha * noise + math.sqrt(1 - alpha * alpha) * float(rng.normal(0, cfg.steer_noise))
        executed = np.array([np.clip(action[0] + noise, -1, 1), action[1]], np.float32)
        state = np.array(applied, np.float32)
        img = cv2.resize(cam, (cfg.image_size[1], cfg.image_size[0]), interpolation=cv2.INTER_AREA)
        images.append(img)
        states.append(state)
        actions.append(action)
        applied = calibrated(cal, float(executed[0]), float(executed[1]))
        imu_rows = []
        for _ in range(cfg.physics_substeps):
            world.step(*applied, dt / cfg.physics_substeps)
            imu_rows.append((world.t, world.read_imu().as_row()))
        if on_frame is not None:
            on_frame(Frame(k * dt, cam, state, action, executed, (s.x, s.y, s.yaw), imu_rows, world.behavior()))
        if abs(track.locate(world.state.x, world.state.y).cte_m) > track.half_width + 0.3:
            break  # left the lane for good: the rest would teach nothing useful
    return {"images": np.stack(images), "states": np.stack(states), "actions": np.stack(actions)}


def generate_demos(cfg: DemoConfig, calibration: Calibration | None = None,
                   on_frame: Callable[[int, Frame], None] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """All episodes concatenated, LeRobot-like: images, states, actions, episode_index, frame_index."""
    parts = []
    for ep in range(cfg.episodes):
        cb = (lambda f, ep=ep: on_frame(ep, f)) if on_frame else None
        arr = run_episode(cfg, ep, calibration, cb)
        n = len(arr["actions"])
        arr["episode_index"] = np.full(n, ep, np.int32)
        arr["frame_index"] = np.arange(n, dtype=np.int32)
        parts.append(arr)
        if progress:
            progress(ep + 1, n)
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out["fps"] = np.float32(cfg.fps)
    out["action_names"] = np.array(ACTION_NAMES)
    out["state_names"] = np.array(ACTION_NAMES)
    return out


def _lap_drive(world: World, rng: np.random.Generator, seconds: float, rate_hz: float):
    """The expert lapping a random track at a random speed: the motion the demo's car really makes."""
    expert = PurePursuitExpert(world.track, world.vehicle, ExpertConfig(cruise_mps=float(rng.uniform(0.6, 2.4))))
    for _ in range(int(seconds * rate_hz)):
        yield expert.act(world.state)


def imu_windows(n_drives: int = 10, segments: int = 40, window_length: int = 100, rate_hz: float = 50.0,
                stride: int = 25, min_purity: float = 0.7, seed: int = 0,
                class_names: tuple[str, ...] = BEHAVIOR_CLASSES, lap_seconds: float = 60.0) -> dict[str, np.ndarray]:
    """Labelled IMU windows (N, T, 9); ``users`` = drive index (split by drive).

    Each drive is a scripted sequence of every behavior on open ground, followed by
    ``lap_seconds`` of the expert lapping a random track (lane-like bends).
    """
    rules = BehaviorRules(class_names=class_names)
    windows, labels, users = [], [], []
    dt = 1.0 / rate_hz
    for drive in range(n_drives):
        rng = np.random.default_rng([seed, 7, drive])
        world = World(TrackConfig(), rules=rules, seed=seed * 1000 + drive)
        scripted = [(seg.steering, seg.throttle) for seg in scripted_drive(rng, segments, world.vehicle.max_speed_mps)
                    for _ in range(int(seg.duration_s * rate_hz))]
        lap_world = World(TrackConfig(shape=("oval", "bean")[drive % 2], radius_m=float(rng.uniform(2.0, 3.5))),
                          rules=rules, seed=seed * 1000 + drive + 500)
        for w, commands in ((world, scripted), (lap_world, _lap_drive(lap_world, rng, lap_seconds, rate_hz))):
            rows, inst = [], []  # windowed per part: no window spans the jump between two worlds
            for steering, throttle in commands:
                s = w.step(steering, throttle, dt)
                rows.append(w.read_imu().as_row())
                inst.append(instant_label(rules, s.v, s.yaw_rate, s.accel))
            rows = np.asarray(rows, np.float32)
            for end in range(window_length, len(rows) + 1, stride):
                name = window_label(inst[end - window_length:end], min_purity)
                if name is not None:
                    windows.append(rows[end - window_length:end])
                    labels.append(name)
                    users.append(drive)
    return {"windows": np.stack(windows), "labels": np.array(labels), "users": np.array(users, np.int64),
            "class_names": np.array(class_names), "sample_rate_hz": np.float32(rate_hz)}
