"""Turn action chunks into one timely action per control tick.

Pure Python + numpy, no ROS: the policy node feeds it chunks and asks it for the
action at each control tick, all times in integer nanoseconds taken from header
stamps and the node clock, so it behaves the same under ``use_sim_time``.

Latency-aware alignment: a chunk computed from an image stamped ``t0`` holds
action ``k`` for time ``t0 + k*dt``. At a tick at time ``now`` the scheduler
executes the action whose time is nearest to ``now`` (index
``round((now - t0) / dt)``); actions whose time is already past when the chunk
arrives are skipped, never replayed.

Modes (``SchedulerConfig.mode``):

* ``queue`` - LeRobot ``ACTPolicy.select_action``: execute ``n_action_steps``
  actions of the newest chunk, then ask for a new one. The new chunk replaces
  the old one; while it is computed the old chunk's tail (if any) keeps running.
* ``ensemble`` - ACT temporal ensembling (LeRobot ``ACTTemporalEnsembler``):
  every chunk covering ``now`` votes, weights ``w_i = exp(-coeff * i)`` with
  ``w_0`` the oldest chunk, normalised to sum 1. A new chunk is wanted always.
* ``async`` - LeRobot async inference: ask for a new chunk when the queued
  future actions fall to ``async_threshold`` of the chunk size; where the new
  chunk overlaps the queue, blend ``(1 - blend_weight) * old + blend_weight * new``.

Neutral (``source == "neutral"``) is returned when disabled, before any chunk,
when the newest accepted chunk's image is older than ``max_action_age``, when no
queued action covers ``now``, and after a chunk with NaN/Inf values (the queue
is cleared: a model emitting non-finite numbers is not trusted until it
produces a valid chunk again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MODES = ("queue", "ensemble", "async")
NS_PER_S = 1_000_000_000


@dataclass
class SchedulerConfig:
    """How chunks become actions. Defaults mirror config/rover.yaml (policy_node)."""

    mode: str = field(
        default="queue", metadata={"description": "chunk execution mode: queue | ensemble | async", "choices": MODES}
    )
    # 2, not LeRobot's "the whole chunk": executing 8 actions per chunk ran commands up to ~250 ms after
    # their frame (drive-sim e2e p95); 2 gave 64-78 ms with the same laps and mean CTE
    # (docs/PERFORMANCE_NOTES_17.md). A checkpoint's own n_action_steps still wins over this default.
    n_action_steps: int = field(
        default=2, metadata={"description": "queue mode: actions executed from a chunk before replanning"}
    )
    max_action_age: float = field(
        default=0.5,
        metadata={"description": "s; neutral when the newest chunk's image is older than this"},
    )
    ensemble_coeff: float = field(
        default=0.01, metadata={"description": "ensemble mode: w_i = exp(-coeff*i), w_0 the oldest chunk"}
    )
    async_threshold: float = field(
        default=0.5,
        metadata={"description": "async mode: request a chunk when queued actions <= threshold * chunk size"},
    )
    blend_weight: float = field(
        default=0.7, metadata={"description": "async mode: weight of the new chunk where chunks overlap"}
    )
    action_limit: float = field(
        default=1.0, metadata={"description": "finite actions are clipped to [-limit, limit] (normalized units)"}
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown chunk mode {self.mode!r}; expected one of {MODES}")
        if self.n_action_steps < 1:
            raise ValueError(f"n_action_steps must be >= 1, got {self.n_action_steps}")
        if not self.max_action_age > 0:
            raise ValueError(f"max_action_age must be > 0 s, got {self.max_action_age}")
        if not 0.0 <= self.async_threshold <= 1.0:
            raise ValueError(f"async_threshold must be in [0, 1], got {self.async_threshold}")
        if not 0.0 <= self.blend_weight <= 1.0:
            raise ValueError(f"blend_weight must be in [0, 1], got {self.blend_weight}")
        if not self.action_limit > 0:
            raise ValueError(f"action_limit must be > 0, got {self.action_limit}")
        if not math.isfinite(self.ensemble_coeff):
            raise ValueError(f"ensemble_coeff must be finite, got {self.ensemble_coeff}")


@dataclass(frozen=True)
class Chunk:
    """One model output: ``actions`` (H, A); action k is meant for ``t0_ns + k * dt_ns``."""

    t0_ns: int
    dt_ns: int
    actions: np.ndarray  # (H, A) float64

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    def index_at(self, t_ns: int) -> int:
        """Index of the action whose time is nearest to ``t_ns`` (may be out of range)."""
        return int(math.floor((t_ns - self.t0_ns) / self.dt_ns + 0.5))


@dataclass(frozen=True)
class ScheduledAction:
    """What to do at one control tick."""

    values: np.ndarray | None  # (A,) or None when neutral
    source: str  # "policy" | "neutral"
    reason: str  # "ok" or why neutral: disabled, no_chunk, stale, exhausted, non_finite
    stamp_ns: int  # image stamp of the newest chunk that produced the action (0 if none)

    @property
    def is_neutral(self) -> bool:
        return self.source == "neutral"


@dataclass
class SchedulerStats:
    chunks_accepted: int = 0
    chunks_rejected_stale: int = 0
    chunks_rejected_non_finite: int = 0
    actions_skipped: int = 0  # actions already in the past when their chunk arrived
    neutral_ticks: int = 0
    policy_ticks: int = 0
    time_jumps: int = 0  # the clock went backwards (sim restart, bag loop): plan dropped


@dataclass
class _TimedAction:
    t_ns: int
    values: np.ndarray  # (A,)


class ChunkScheduler:
    """Stateful chunk executor; call ``add_chunk`` per inference and ``action_at`` per tick."""

    def __init__(self, config: SchedulerConfig, enabled: bool = True):
        self.config = config
        self.enabled = enabled
        self.stats = SchedulerStats()
        self._chunks: list[Chunk] = []  # queue: [newest]; ensemble: all still covering the future
        self._queue: list[_TimedAction] = []  # async mode timeline, ascending times
        self._chunk_size = 0
        self._newest_t0_ns: int | None = None
        self._blocked_reason: str | None = None  # set after a non-finite chunk
        self._last_now_ns: int | None = None  # last tick time, to notice the clock going backwards

    # -- control ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every chunk (e.g. on enable/disable), keep stats."""
        self._chunks.clear()
        self._queue.clear()
        self._newest_t0_ns = None
        self._blocked_reason = None

    def fault(self, reason: str) -> None:
        """The model failed (exception, bad output): drop the plan and stay neutral until a valid chunk."""
        self.reset()
        self._blocked_reason = reason

    def set_enabled(self, enabled: bool) -> None:
        if enabled != self.enabled:
            self.reset()
        self.enabled = enabled

    # -- inputs ----------------------------------------------------------------------------
    def add_chunk(self, actions: np.ndarray, t0_ns: int, dt_s: float, now_ns: int) -> str:
        """Accept a chunk computed from an image stamped ``t0_ns``; returns "ok" or why rejected.

        ``actions``: (H, A) normalized actions; ``dt_s``: s between actions.
        """
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < 1:
            raise ValueError(f"action chunk must have shape (H, A) with H, A >= 1, got {actions.shape}")
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise ValueError(f"chunk dt must be a positive number of seconds, got {dt_s}")
        if not self.enabled:
            return "disabled"
        if not np.isfinite(actions).all():
            self.fault("non_finite")
            self.stats.chunks_rejected_non_finite += 1
            return "non_finite"
        if self._newest_t0_ns is not None and t0_ns < self._newest_t0_ns:
            # An older observation than what we already act on: never go back in time.
            self.stats.chunks_rejected_stale += 1
            return "stale"
        if now_ns - t0_ns > self.config.max_action_age * NS_PER_S:
            self.stats.chunks_rejected_stale += 1
            return "stale"

        limit = self.config.action_limit
        chunk = Chunk(int(t0_ns), max(1, int(round(dt_s * NS_PER_S))), np.clip(actions, -limit, limit))
        first_live = max(0, chunk.index_at(now_ns))
        self.stats.actions_skipped += min(first_live, chunk.horizon)
        self.stats.chunks_accepted += 1
        self._blocked_reason = None
        self._newest_t0_ns = chunk.t0_ns
        self._chunk_size = chunk.horizon

        mode = self.config.mode
        if mode == "queue":
            self._chunks = [chunk]
        elif mode == "ensemble":
            self._chunks.append(chunk)
            self._prune_ensemble(now_ns)
        else:
            self._merge_async(chunk, first_live, now_ns)
        return "ok"

    # -- outputs ---------------------------------------------------------------------------
    def wants_chunk(self, now_ns: int) -> bool:
        """Whether the worker should run the model on the next fresh frame."""
        if not self.enabled:
            return False
        if self._newest_t0_ns is None:
            return True
        mode = self.config.mode
        if mode == "ensemble":
            return True
        if mode == "queue":
            chunk = self._chunks[0]
            return chunk.index_at(now_ns) >= min(self.config.n_action_steps, chunk.horizon)
        remaining = sum(1 for a in self._queue if a.t_ns >= now_ns - self._half_dt_ns())
        return remaining <= self.config.async_threshold * self._chunk_size

    def action_at(self, now_ns: int) -> ScheduledAction:
        """The action to apply at control tick ``now_ns``."""
        if self._last_now_ns is not None and now_ns < self._last_now_ns:
            # Every stamp we hold belongs to a timeline that no longer exists.
            self.reset()
            self.stats.time_jumps += 1
        self._last_now_ns = now_ns
        result = self._select(now_ns)
        if result.is_neutral:
            self.stats.neutral_ticks += 1
        else:
            self.stats.policy_ticks += 1
        return result

    # -- internals -------------------------------------------------------------------------
    def _neutral(self, reason: str) -> ScheduledAction:
        return ScheduledAction(None, "neutral", reason, self._newest_t0_ns or 0)

    def _select(self, now_ns: int) -> ScheduledAction:
        if not self.enabled:
            return self._neutral("disabled")
        if self._blocked_reason is not None:
            return self._neutral(self._blocked_reason)
        if self._newest_t0_ns is None:
            return self._neutral("no_chunk")
        if now_ns - self._newest_t0_ns > self.config.max_action_age * NS_PER_S:
            return self._neutral("stale")
        mode = self.config.mode
        if mode == "queue":
            values = self._select_queue(now_ns)
        elif mode == "ensemble":
            values = self._select_ensemble(now_ns)
        else:
            values = self._select_async(now_ns)
        if values is None:
            return self._neutral("exhausted")
        return ScheduledAction(values, "policy", "ok", self._newest_t0_ns)

    def _select_queue(self, now_ns: int) -> np.ndarray | None:
        chunk = self._chunks[0]
        k = chunk.index_at(now_ns)
        return chunk.actions[k].copy() if 0 <= k < chunk.horizon else None

    def _prune_ensemble(self, now_ns: int) -> None:
        self._chunks = [c for c in self._chunks if c.index_at(now_ns) < c.horizon]
        self._chunks.sort(key=lambda c: c.t0_ns)

    def _select_ensemble(self, now_ns: int) -> np.ndarray | None:
        self._prune_ensemble(now_ns)
        votes = []
        for chunk in self._chunks:  # oldest first
            k = chunk.index_at(now_ns)
            if 0 <= k < chunk.horizon:
                votes.append(chunk.actions[k])
        if not votes:
            return None
        weights = np.exp(-self.config.ensemble_coeff * np.arange(len(votes)))  # w_0: oldest chunk
        return (weights[:, None] * np.stack(votes)).sum(axis=0) / weights.sum()

    def _half_dt_ns(self) -> int:
        return (self._chunks[0].dt_ns if self._chunks else 1) // 2

    def _merge_async(self, chunk: Chunk, first_live: int, now_ns: int) -> None:
        """Replace the queue by the new chunk's future actions, blended where both overlap."""
        half = chunk.dt_ns // 2
        old = [a for a in self._queue if a.t_ns >= now_ns - half]
        w = self.config.blend_weight
        merged: list[_TimedAction] = []
        j = 0
        for k in range(first_live, chunk.horizon):
            t = chunk.t0_ns + k * chunk.dt_ns
            new_values = chunk.actions[k]
            while j < len(old) and old[j].t_ns < t - half:
                j += 1
            if j < len(old) and abs(old[j].t_ns - t) <= half:
                new_values = (1.0 - w) * old[j].values + w * new_values
                j += 1
            merged.append(_TimedAction(t, new_values))
        self._queue = merged
        self._chunks = [chunk]

    def _select_async(self, now_ns: int) -> np.ndarray | None:
        half = self._half_dt_ns()
        while self._queue and self._queue[0].t_ns < now_ns - half:
            self._queue.pop(0)
        if self._queue and abs(self._queue[0].t_ns - now_ns) <= half:
            return self._queue[0].values.copy()
        return None
