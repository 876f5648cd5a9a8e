"""Closed-loop driving score from a stream of poses: laps, cross-track error, off-track events.

Progress is the unwrapped arc length along the centerline, so driving backwards
or cutting across the infield does not count as laps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge_inference.sim.track import Track


@dataclass
class DriveScore:
    laps_completed: int
    off_track_events: int
    mean_cte_m: float
    max_cte_m: float
    distance_m: float
    duration_s: float
    first_lap_clean: bool          # first lap done with no off-track event before it
    samples: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class LapScorer:
    track: Track
    off_track_margin_m: float = 0.0   # the car's centre may leave the lane by this much before it counts
    progress_m: float = 0.0
    _last_s: float | None = None
    _off: bool = False
    events: int = 0
    _ctes: list = field(default_factory=list)
    _t0: float | None = None
    _t: float = 0.0
    _first_lap_clean: bool = False

    def update(self, x: float, y: float, t_s: float) -> None:
        lane = self.track.locate(x, y)
        if self._last_s is not None:
            ds = lane.s_m - self._last_s
            L = self.track.length
            ds = (ds + L / 2) % L - L / 2     # shortest way around the loop
            self.progress_m += ds
        self._last_s = lane.s_m
        if self._t0 is None:
            self._t0 = t_s
        self._t = t_s
        self._ctes.append(abs(lane.cte_m))
        off = abs(lane.cte_m) > self.track.half_width + self.off_track_margin_m
        if off and not self._off:
            self.events += 1
        self._off = off
        if self.laps >= 1 and not self._first_lap_clean and self.events == 0:
            self._first_lap_clean = True

    @property
    def off_track(self) -> bool:
        """Whether the latest pose is off the lane."""
        return self._off

    @property
    def laps(self) -> int:
        return max(0, int(math.floor(self.progress_m / self.track.length + 1e-9)))

    def result(self) -> DriveScore:
        c = np.asarray(self._ctes) if self._ctes else np.zeros(1)
        return DriveScore(laps_completed=self.laps, off_track_events=self.events,
                          mean_cte_m=float(c.mean()), max_cte_m=float(c.max()),
                          distance_m=float(self.progress_m),
                          duration_s=float(self._t - (self._t0 or 0.0)),
                          first_lap_clean=self._first_lap_clean, samples=len(self._ctes))
