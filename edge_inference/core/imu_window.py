"""Resample Imu + MagneticField samples into fixed-rate windows for the behavior model.

Pure Python + numpy, no ROS. The behavior classifier wants a (window_length, 9)
array sampled at exactly ``sample_rate_hz``: columns [accel xyz m/s², gyro xyz
rad/s, mag xyz T]. Real IMUs deliver jittery, sometimes reordered or duplicated
samples at their own rate (50, 100 Hz, ...), so samples are buffered by
timestamp and linearly interpolated onto a regular grid anchored at the first
sample. A grid point is only emitted once the newest IMU sample is
``reorder_tolerance`` past it, so mildly out-of-order samples still land in the
right place. A gap longer than ``max_gap`` between IMU samples resets the window
(interpolating across it would invent motion); so does a jump back in time
(simulator restart, bag loop). The magnetometer is optional:
without a sample within ``mag_timeout`` its columns are zeros and the window is
flagged so the node can raise a diagnostic warning.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

import numpy as np

N_CHANNELS = 9  # accel xyz (m/s²), gyro xyz (rad/s), mag xyz (T)
NS_PER_S = 1_000_000_000
_MAX_MAG_BUFFER = 1000


@dataclass
class WindowConfig:
    """Windowing parameters. Defaults mirror config/rover.yaml (behavior_node)."""

    window_length: int = field(default=100, metadata={"description": "samples per window"})
    sample_rate_hz: float = field(default=50.0, metadata={"description": "Hz; the model's sampling rate"})
    stride: int = field(default=25, metadata={"description": "classify every `stride` new resampled samples"})
    max_gap: float = field(default=0.2, metadata={"description": "s; an IMU gap longer than this resets the window"})
    reorder_tolerance: float = field(
        default=0.02, metadata={"description": "s; wait this long past a grid point for late samples"}
    )
    mag_timeout: float = field(
        default=0.5, metadata={"description": "s; magnetometer older than this counts as missing (zeros)"}
    )

    def __post_init__(self) -> None:
        if self.window_length < 2:
            raise ValueError(f"window_length must be >= 2, got {self.window_length}")
        if not self.sample_rate_hz > 0:
            raise ValueError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if not self.max_gap > 0:
            raise ValueError(f"max_gap must be > 0 s, got {self.max_gap}")
        if self.reorder_tolerance < 0:
            raise ValueError(f"reorder_tolerance must be >= 0 s, got {self.reorder_tolerance}")
        if not self.mag_timeout > 0:
            raise ValueError(f"mag_timeout must be > 0 s, got {self.mag_timeout}")


@dataclass(frozen=True)
class Window:
    """One model input: ``data`` (window_length, 9) float32 on the regular grid."""

    data: np.ndarray
    stamp_ns: int  # grid time of the newest row
    mag_missing: bool  # at least one row had no magnetometer sample (zeros used)


@dataclass
class WindowStats:
    imu_samples: int = 0
    mag_samples: int = 0
    duplicates: int = 0  # same stamp as a buffered sample: dropped
    late_samples: int = 0  # older than an already emitted grid point: dropped
    invalid_samples: int = 0  # NaN/Inf values: dropped (one would poison a whole window)
    resets: int = 0  # gaps longer than max_gap
    rows: int = 0  # resampled rows produced
    windows: int = 0
    mag_missing_rows: int = 0


class ImuWindower:
    """Feed ``add_imu`` / ``add_mag``; ``add_imu`` returns the windows that became ready."""

    def __init__(self, config: WindowConfig):
        self.config = config
        self.stats = WindowStats()
        self._period_ns = NS_PER_S / config.sample_rate_hz  # float: exact grid for any rate
        self._tolerance_ns = int(config.reorder_tolerance * NS_PER_S)
        self._gap_ns = int(config.max_gap * NS_PER_S)
        self._mag_timeout_ns = int(config.mag_timeout * NS_PER_S)
        self._mag_t: list[int] = []
        self._mag_v: list[np.ndarray] = []
        self.reset()

    def reset(self) -> None:
        """Drop the IMU buffer and the partial window (the magnetometer buffer stays)."""
        self._imu_t: list[int] = []  # ascending stamps (ns)
        self._imu_v: list[np.ndarray] = []  # (6,) accel + gyro
        self._grid0_ns: int | None = None
        self._next_row = 0  # index of the next grid point to emit
        self._rows: deque[np.ndarray] = deque(maxlen=self.config.window_length)
        self._row_mag_missing: deque[bool] = deque(maxlen=self.config.window_length)
        self._since_last_window = 0

    @property
    def mag_missing(self) -> bool:
        """Whether the newest row had no magnetometer (for the diagnostic)."""
        return bool(self._row_mag_missing[-1]) if self._row_mag_missing else not self._mag_t

    def add_mag(self, stamp_ns: int, mag_xyz) -> None:
        """Buffer one magnetometer sample (T)."""
        v = np.asarray(mag_xyz, dtype=np.float64).reshape(3)
        if not np.isfinite(v).all():
            self.stats.invalid_samples += 1
            return
        i = bisect.bisect_left(self._mag_t, stamp_ns)
        if i < len(self._mag_t) and self._mag_t[i] == stamp_ns:
            self.stats.duplicates += 1
            return
        self._mag_t.insert(i, stamp_ns)
        self._mag_v.insert(i, v)
        self.stats.mag_samples += 1
        if len(self._mag_t) > _MAX_MAG_BUFFER:  # magnetometer without IMU: bound memory
            del self._mag_t[0], self._mag_v[0]

    def add_imu(self, stamp_ns: int, accel_xyz, gyro_xyz) -> list[Window]:
        """Buffer one IMU sample (m/s², rad/s); return windows completed by it (usually 0 or 1)."""
        v = np.concatenate([np.asarray(accel_xyz, dtype=np.float64).reshape(3),
                            np.asarray(gyro_xyz, dtype=np.float64).reshape(3)])
        if not np.isfinite(v).all():
            self.stats.invalid_samples += 1
            return []
        if self._imu_t and abs(stamp_ns - self._imu_t[-1]) > self._gap_ns:
            # A gap, or the clock jumped back (sim restart, bag loop): start a new window either way.
            self.stats.resets += 1
            self.reset()
        if self._grid0_ns is not None and stamp_ns <= self._grid_time(self._next_row - 1):
            self.stats.late_samples += 1
            return []
        i = bisect.bisect_left(self._imu_t, stamp_ns)
        if i < len(self._imu_t) and self._imu_t[i] == stamp_ns:
            self.stats.duplicates += 1
            return []
        self._imu_t.insert(i, stamp_ns)
        self._imu_v.insert(i, v)
        self.stats.imu_samples += 1
        if self._grid0_ns is None or (self._next_row == 0 and stamp_ns < self._grid0_ns):
            self._grid0_ns = stamp_ns  # anchor at the oldest sample seen before the first row
        return self._emit_ready()

    # -- internals -------------------------------------------------------------------------
    def _grid_time(self, row: int) -> int:
        return self._grid0_ns + int(round(row * self._period_ns))

    def _emit_ready(self) -> list[Window]:
        windows = []
        newest = self._imu_t[-1]
        while True:
            t = self._grid_time(self._next_row)
            if newest - t < self._tolerance_ns or newest < t:
                break
            self._rows.append(np.concatenate([self._interp_imu(t), self._mag_at(t)]))
            self._next_row += 1
            self._since_last_window += 1
            self.stats.rows += 1
            if len(self._rows) == self.config.window_length and self._since_last_window >= self.config.stride:
                self._since_last_window = 0
                self.stats.windows += 1
                windows.append(Window(np.asarray(self._rows, dtype=np.float32), t, any(self._row_mag_missing)))
        self._prune(self._grid_time(self._next_row - 1))
        return windows

    def _interp_imu(self, t: int) -> np.ndarray:
        ts = self._imu_t
        i = bisect.bisect_right(ts, t)  # ts[i-1] <= t < ts[i]
        if i == 0:
            return self._imu_v[0].copy()
        if i == len(ts) or ts[i - 1] == t:
            return self._imu_v[i - 1].copy()
        t0, t1 = ts[i - 1], ts[i]
        a = (t - t0) / (t1 - t0)
        return (1.0 - a) * self._imu_v[i - 1] + a * self._imu_v[i]

    def _mag_at(self, t: int) -> np.ndarray:
        """Most recent magnetometer sample at or before ``t`` (zero-order hold), else zeros."""
        i = bisect.bisect_right(self._mag_t, t)
        if i > 0 and t - self._mag_t[i - 1] <= self._mag_timeout_ns:
            self._row_mag_missing.append(False)
            return self._mag_v[i - 1]
        self._row_mag_missing.append(True)
        self.stats.mag_missing_rows += 1
        return np.zeros(3)

    def _prune(self, emitted_t: int) -> None:
        """Keep one IMU sample at or before the last emitted grid point (interpolation anchor)."""
        i = bisect.bisect_right(self._imu_t, emitted_t) - 1
        if i > 0:
            del self._imu_t[:i], self._imu_v[:i]
        j = bisect.bisect_right(self._mag_t, emitted_t - self._mag_timeout_ns) - 1
        if j > 0:
            del self._mag_t[:j], self._mag_v[:j]


@dataclass
class SmootherConfig:
    method: str = field(
        default="ema", metadata={"description": "probability smoothing: ema | majority", "choices": ("ema", "majority")}
    )
    ema_alpha: float = field(default=0.3, metadata={"description": "ema: weight of the newest probabilities"})
    vote_window: int = field(default=5, metadata={"description": "majority: number of recent windows that vote"})

    def __post_init__(self) -> None:
        if self.method not in ("ema", "majority"):
            raise ValueError(f"unknown smoothing method {self.method!r}; expected 'ema' or 'majority'")
        if not 0.0 < self.ema_alpha <= 1.0:
            raise ValueError(f"ema_alpha must be in (0, 1], got {self.ema_alpha}")
        if self.vote_window < 1:
            raise ValueError(f"vote_window must be >= 1, got {self.vote_window}")


class ProbabilitySmoother:
    """Steady labels from jittery per-window probabilities.

    ``ema``: p ← α·new + (1-α)·p, label = argmax p.
    ``majority``: label = most frequent argmax of the last N windows (ties go to the
    most recent of the tied labels); probabilities = mean of those N vectors.
    """

    def __init__(self, config: SmootherConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._ema: np.ndarray | None = None
        self._history: deque[np.ndarray] = deque(maxlen=self.config.vote_window)

    def update(self, probs) -> tuple[int, np.ndarray]:
        """Add one probability vector (C,); return (class_id, smoothed probabilities (C,))."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if not np.isfinite(p).all():
            raise ValueError("behavior probabilities contain NaN/Inf")
        if self.config.method == "ema":
            if self._ema is None or self._ema.shape != p.shape:
                self._ema = p.copy()
            else:
                a = self.config.ema_alpha
                self._ema = a * p + (1.0 - a) * self._ema
            return int(np.argmax(self._ema)), self._ema.copy()
        if self._history and self._history[-1].shape != p.shape:
            self._history.clear()
        self._history.append(p)
        labels = [int(np.argmax(h)) for h in self._history]
        counts = np.bincount(labels, minlength=p.size)
        tied = set(np.flatnonzero(counts == counts.max()).tolist())
        class_id = next(lbl for lbl in reversed(labels) if lbl in tied)
        return class_id, np.mean(np.stack(self._history), axis=0)
