"""ChunkScheduler: action selection per mode under scripted inference times, alignment, neutral rules."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edge_inference.core.chunk_scheduler import ChunkScheduler, SchedulerConfig

NS = 1_000_000_000
DT = 1.0 / 30.0
DT_NS = round(DT * NS)
H = 32


def time_coded_chunk(t0_ns: int, horizon: int = H, dt_ns: int = DT_NS) -> np.ndarray:
    """(H, 2) chunk whose action k holds its own target time (s) and k: alignment becomes visible."""
    k = np.arange(horizon)
    return np.stack([(t0_ns + k * dt_ns) / NS, k.astype(float)], axis=1)


def simulate(cfg: SchedulerConfig, latency_ms: float, duration_s: float = 4.0, base_ns: int = 0,
             camera_phase_ns: int = 7_000_000):
    """Camera at 30 Hz, control at 30 Hz, one worker whose inference takes ``latency_ms``.

    The worker starts on the newest frame whenever the scheduler wants a chunk
    (checked at every frame and tick), exactly like the node's worker thread.
    Returns the ticks [(now_ns, ScheduledAction)] and the requests [(start_ns, index_of_current_chunk)].
    """
    sched = ChunkScheduler(cfg)
    latency_ns = round(latency_ms * 1e6)
    frames = [base_ns + camera_phase_ns + i * DT_NS for i in range(int(duration_s * 30) + 1)]
    ticks = [base_ns + j * DT_NS for j in range(1, int(duration_s * 30))]
    events = sorted([(t, "frame") for t in frames] + [(t, "tick") for t in ticks])
    busy_until, pending, last_used = None, None, -1
    out, requests = [], []
    newest_frame = None
    for t, kind in events:
        if pending is not None and busy_until <= t:
            sched.add_chunk(time_coded_chunk(pending), pending, DT, busy_until)
            pending = None
        if kind == "frame":
            newest_frame = t
        else:
            out.append((t, sched.action_at(t)))
        if pending is None and newest_frame is not None and newest_frame > last_used and sched.wants_chunk(t):
            current_index = None
            if sched._newest_t0_ns is not None:
                current_index = round((t - sched._newest_t0_ns) / DT_NS)
            requests.append((t, current_index))
            pending, busy_until, last_used = newest_frame, t + latency_ns, newest_frame
    return sched, out, requests


LATENCIES = (20, 80, 250)


@pytest.mark.parametrize("mode", ["queue", "ensemble", "async"])
@pytest.mark.parametrize("latency_ms", LATENCIES)
def test_executed_action_is_the_one_meant_for_now(mode, latency_ms):
    """Latency-aware alignment: every policy tick executes an action planned for (about) that tick."""
    cfg = SchedulerConfig(mode=mode, max_action_age=2.0, action_limit=1e9, n_action_steps=8)
    sched, ticks, _ = simulate(cfg, latency_ms)
    policy = [(t, a) for t, a in ticks if not a.is_neutral]
    assert len(policy) > 0.8 * len(ticks), f"{mode}/{latency_ms} ms: too many neutral ticks"
    for t, a in policy:
        assert abs(a.values[0] - t / NS) <= DT / 2 + 1e-9, (mode, latency_ms, t, a)
        assert a.stamp_ns <= t  # a command never claims to come from a future image
    # Past actions are skipped, never replayed: the executed target time never goes backwards.
    targets = [a.values[0] for _, a in policy]
    assert all(b > a_ for a_, b in zip(targets, targets[1:]))


@pytest.mark.parametrize("latency_ms,expected_first", [(20, 1), (80, 2), (250, 8)])
def test_late_chunk_skips_actions_already_in_the_past(latency_ms, expected_first):
    """A chunk arriving L ms after its image starts at index round(L / dt)."""
    cfg = SchedulerConfig(mode="queue", max_action_age=2.0, action_limit=1e9)
    sched = ChunkScheduler(cfg)
    t0 = 5 * NS
    arrival = t0 + round(latency_ms * 1e6)
    assert sched.add_chunk(time_coded_chunk(t0), t0, DT, arrival) == "ok"
    assert sched.stats.actions_skipped == expected_first
    first = sched.action_at(arrival)
    assert first.values[1] == expected_first
    assert first.stamp_ns == t0


@pytest.mark.parametrize("mode", ["queue", "ensemble", "async"])
def test_chunk_entirely_in_the_past_executes_nothing(mode):
    """250 ms late with a 5-action (167 ms) chunk: every action is past, so neutral, never a replay."""
    sched = ChunkScheduler(SchedulerConfig(mode=mode))
    t0 = 3 * NS
    arrival = t0 + 250_000_000
    assert sched.add_chunk(np.full((5, 2), 0.7), t0, DT, arrival) == "ok"
    assert sched.stats.actions_skipped == 5
    result = sched.action_at(arrival)
    assert result.is_neutral and result.reason == "exhausted"
    assert sched.wants_chunk(arrival)


@pytest.mark.parametrize("latency_ms", LATENCIES)
def test_queue_mode_replans_after_n_action_steps(latency_ms):
    cfg = SchedulerConfig(mode="queue", n_action_steps=8, max_action_age=2.0, action_limit=1e9)
    _, ticks, requests = simulate(cfg, latency_ms)
    assert requests[0][1] is None  # the first request comes before any chunk
    for _, index in requests[1:]:
        assert index >= 8, f"queue mode asked for a chunk at index {index} < n_action_steps"
    # and it does replan (not just run one chunk to its end): one chunk per ~8 steps + latency
    period_s = 8 * DT + latency_ms / 1e3 + DT
    assert len(requests) >= int(4.0 / period_s) - 1
    # actions from the skipped (past) ones up to n_action_steps run, and the tail beyond it bridges
    # the inference time of the next chunk
    policy = [a for _, a in ticks if not a.is_neutral]
    first_live = math.ceil(latency_ms / 1e3 / DT) + 1
    assert {a.values[1] for a in policy} >= set(range(first_live, 9))


def test_queue_mode_goes_neutral_when_chunk_runs_out():
    cfg = SchedulerConfig(mode="queue", n_action_steps=4, max_action_age=2.0, action_limit=1e9)
    sched = ChunkScheduler(cfg)
    sched.add_chunk(time_coded_chunk(0, horizon=6), 0, DT, 0)
    assert [sched.action_at(k * DT_NS).values[1] for k in range(6)] == [0, 1, 2, 3, 4, 5]
    assert not sched.wants_chunk(3 * DT_NS) and sched.wants_chunk(4 * DT_NS)
    after = sched.action_at(6 * DT_NS)
    assert after.is_neutral and after.reason == "exhausted"


def lerobot_online_ensemble(chunks: list[np.ndarray], coeff: float) -> list[np.ndarray]:
    """Reference: LeRobot ACTTemporalEnsembler.update, one chunk per step, rewritten in numpy."""
    horizon = chunks[0].shape[0]
    weights = np.exp(-coeff * np.arange(horizon))
    cumsum = np.cumsum(weights)
    ens, count, out = None, None, []
    for actions in chunks:
        if ens is None:
            ens, count = actions.copy(), np.ones((horizon, 1), dtype=int)
        else:
            ens = ens * cumsum[count - 1]
            ens = ens + actions[:-1] * weights[count]
            ens = ens / cumsum[count]
            count = np.minimum(count + 1, horizon)
            ens = np.concatenate([ens, actions[-1:]])
            count = np.concatenate([count, np.ones((1, 1), dtype=int)])
        out.append(ens[0])
        ens, count = ens[1:], count[1:]
    return out


@pytest.mark.parametrize("coeff", [0.01, 0.5, -0.2, 0.0])
def test_ensemble_equals_lerobot_temporal_ensembler(coeff):
    """One chunk per tick, zero latency: identical to LeRobot's online computation."""
    rng = np.random.default_rng(0)
    horizon = 10
    chunks = [rng.uniform(-1, 1, size=(horizon, 2)) for _ in range(25)]
    sched = ChunkScheduler(SchedulerConfig(mode="ensemble", ensemble_coeff=coeff, max_action_age=2.0))
    ours = []
    for step, chunk in enumerate(chunks):
        now = 1_000 * NS + step * DT_NS
        assert sched.add_chunk(chunk, now, DT, now) == "ok"
        ours.append(sched.action_at(now).values)
    np.testing.assert_allclose(np.array(ours), np.array(lerobot_online_ensemble(chunks, coeff)), atol=1e-12)


def test_ensemble_with_latency_equals_direct_weighted_average():
    """Chunks every 3 ticks arriving 80 ms late: at each tick the average of covering chunks, oldest w_0."""
    rng = np.random.default_rng(1)
    coeff = 0.3
    sched = ChunkScheduler(SchedulerConfig(mode="ensemble", ensemble_coeff=coeff, max_action_age=2.0))
    stamps, chunks = [], []
    for step in range(60):
        now = step * DT_NS
        if step % 3 == 0 and step >= 3:
            t0 = now - 80_000_000
            chunk = rng.uniform(-1, 1, size=(H, 2))
            sched.add_chunk(chunk, t0, DT, now)
            stamps.append(t0)
            chunks.append(chunk)
        got = sched.action_at(now)
        votes = []
        for t0, chunk in zip(stamps, chunks):  # arrival order == stamp order here: oldest first
            k = math.floor((now - t0) / DT_NS + 0.5)
            if 0 <= k < H:
                votes.append(chunk[k])
        if not votes:
            assert got.is_neutral
            continue
        w = np.exp(-coeff * np.arange(len(votes)))
        np.testing.assert_allclose(got.values, (w[:, None] * np.array(votes)).sum(0) / w.sum(), atol=1e-12)


def test_async_requests_at_threshold_and_blends_overlap():
    cfg = SchedulerConfig(mode="async", async_threshold=0.5, blend_weight=0.7, max_action_age=2.0)
    sched = ChunkScheduler(cfg)
    horizon = 10
    sched.add_chunk(np.full((horizon, 2), 0.2), 0, DT, 0)
    # 10 queued; threshold 0.5 -> request once 5 or fewer remain (from tick 5 on)
    wants = []
    for k in range(8):
        sched.action_at(k * DT_NS)
        wants.append(sched.wants_chunk(k * DT_NS))
    assert wants == [False] * 5 + [True] * 3
    # a new chunk from an image at tick 5, arriving at tick 7: steps 7..9 overlap, 10..14 are new
    now = 7 * DT_NS
    sched.add_chunk(np.full((horizon, 2), -0.4), 5 * DT_NS, DT, now)
    got = [sched.action_at(k * DT_NS).values[0] for k in range(7, 15)]
    blended = 0.3 * 0.2 + 0.7 * -0.4
    np.testing.assert_allclose(got, [blended] * 3 + [-0.4] * 5)
    assert sched.stats.actions_skipped == 2  # actions for ticks 5 and 6 were already past


@pytest.mark.parametrize("mode", ["queue", "ensemble", "async"])
def test_neutral_on_non_finite_chunk_until_a_valid_one(mode):
    sched = ChunkScheduler(SchedulerConfig(mode=mode))
    sched.add_chunk(np.full((H, 2), 0.5), 0, DT, 0)
    assert not sched.action_at(DT_NS).is_neutral
    bad = np.full((H, 2), 0.5)
    bad[3, 1] = np.nan
    assert sched.add_chunk(bad, DT_NS, DT, 2 * DT_NS) == "non_finite"
    result = sched.action_at(2 * DT_NS)
    assert result.is_neutral and result.reason == "non_finite"
    inf = np.full((H, 2), np.inf)
    assert sched.add_chunk(inf, 2 * DT_NS, DT, 3 * DT_NS) == "non_finite"
    assert sched.action_at(3 * DT_NS).reason == "non_finite"
    assert sched.add_chunk(np.full((H, 2), -0.5), 3 * DT_NS, DT, 4 * DT_NS) == "ok"
    np.testing.assert_allclose(sched.action_at(4 * DT_NS).values, [-0.5, -0.5])
    assert sched.stats.chunks_rejected_non_finite == 2


@pytest.mark.parametrize("mode", ["queue", "ensemble", "async"])
def test_neutral_when_no_fresh_chunk_within_max_action_age(mode):
    sched = ChunkScheduler(SchedulerConfig(mode=mode, max_action_age=0.3, n_action_steps=32))
    t0 = 10 * NS
    sched.add_chunk(np.full((H, 2), 0.3), t0, DT, t0 + 20_000_000)
    assert not sched.action_at(t0 + 290_000_000).is_neutral
    late = sched.action_at(t0 + 310_000_000)
    assert late.is_neutral and late.reason == "stale"
    # a chunk whose image is already older than max_action_age is rejected on arrival
    assert sched.add_chunk(np.full((H, 2), 0.3), t0 + 1, DT, t0 + 1 + 400_000_000) == "stale"
    # and one from an image older than the chunk in use is never accepted (no going back in time)
    assert sched.add_chunk(np.full((H, 2), 0.3), t0 - 1, DT, t0 + 50_000_000) == "stale"


def test_disabled_and_no_chunk_are_neutral_and_enable_starts_fresh():
    sched = ChunkScheduler(SchedulerConfig(), enabled=False)
    assert sched.action_at(0).reason == "disabled"
    assert not sched.wants_chunk(0)
    assert sched.add_chunk(np.zeros((H, 2)), 0, DT, 0) == "disabled"
    sched.set_enabled(True)
    assert sched.action_at(0).reason == "no_chunk"
    assert sched.wants_chunk(0)
    sched.add_chunk(np.full((H, 2), 0.1), 0, DT, 0)
    assert not sched.action_at(DT_NS).is_neutral
    sched.set_enabled(False)
    sched.set_enabled(True)
    assert sched.action_at(2 * DT_NS).reason == "no_chunk"  # the old plan is forgotten


def test_clock_going_backwards_drops_the_plan_and_accepts_the_new_timeline():
    """Sim restart / bag loop: stamps from the old timeline must not block the new one."""
    sched = ChunkScheduler(SchedulerConfig(mode="async"))
    t0 = 50 * NS
    sched.add_chunk(np.full((H, 2), 0.2), t0, DT, t0)
    assert not sched.action_at(t0 + DT_NS).is_neutral
    restart = 1 * NS
    assert sched.action_at(restart).reason == "no_chunk" and sched.stats.time_jumps == 1
    assert sched.add_chunk(np.full((H, 2), -0.2), restart, DT, restart) == "ok"
    np.testing.assert_allclose(sched.action_at(restart + DT_NS).values, [-0.2, -0.2])


def test_actions_are_clipped_to_the_limit():
    sched = ChunkScheduler(SchedulerConfig(action_limit=1.0))
    sched.add_chunk(np.array([[3.0, -7.0]] * 4), 0, DT, 0)
    np.testing.assert_allclose(sched.action_at(0).values, [1.0, -1.0])


def test_sim_time_from_zero_and_large_wall_stamps_behave_the_same():
    """Only differences of stamps matter: sim time starting at 0 s or wall time in 2026."""
    cfg = SchedulerConfig(mode="async", max_action_age=2.0, action_limit=1e9)
    _, a, _ = simulate(cfg, 80, base_ns=0)
    _, b, _ = simulate(cfg, 80, base_ns=1_795_000_000 * NS)
    assert [x.source for _, x in a] == [x.source for _, x in b]
    np.testing.assert_allclose([x.values[1] for _, x in a if not x.is_neutral],
                               [x.values[1] for _, x in b if not x.is_neutral])


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "fifo"}, "unknown chunk mode"),
    ({"n_action_steps": 0}, "n_action_steps"),
    ({"max_action_age": 0.0}, "max_action_age"),
    ({"async_threshold": 1.5}, "async_threshold"),
    ({"blend_weight": -0.1}, "blend_weight"),
    ({"ensemble_coeff": float("nan")}, "ensemble_coeff"),
])
def test_bad_config_is_rejected_with_a_clear_message(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SchedulerConfig(**kwargs)


def test_bad_chunk_shapes_are_rejected():
    sched = ChunkScheduler(SchedulerConfig())
    with pytest.raises(ValueError, match="shape"):
        sched.add_chunk(np.zeros(5), 0, DT, 0)
    with pytest.raises(ValueError, match="dt"):
        sched.add_chunk(np.zeros((5, 2)), 0, 0.0, 0)
