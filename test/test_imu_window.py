"""ImuWindower + ProbabilitySmoother: resampling, reordering, duplicates, gaps, magnetometer, stride."""
from __future__ import annotations

import numpy as np
import pytest

from edge_inference.core.imu_window import ImuWindower, ProbabilitySmoother, SmootherConfig, WindowConfig

NS = 1_000_000_000
T_BASE = 1_700_000_000 * NS  # wall-clock-like stamps: exercises int ns arithmetic


def signal(t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth test motion: accel (N,3) m/s², gyro (N,3) rad/s, slow enough for linear interpolation."""
    accel = np.stack([np.sin(2 * np.pi * 0.5 * t_s), np.cos(2 * np.pi * 0.3 * t_s), 9.81 + 0 * t_s], axis=1)
    gyro = np.stack([0.1 * t_s, -0.2 + 0 * t_s, 0.5 * np.sin(2 * np.pi * 0.2 * t_s)], axis=1)
    return accel, gyro


def samples(rate_hz: float, duration_s: float, start_s: float = 0.0):
    t = start_s + np.arange(int(round(duration_s * rate_hz))) / rate_hz
    accel, gyro = signal(t)
    return [(T_BASE + int(round(ti * NS)), a, g) for ti, a, g in zip(t, accel, gyro)]


def feed(windower: ImuWindower, stream) -> list:
    out = []
    for stamp, a, g in stream:
        out.extend(windower.add_imu(stamp, a, g))
    return out


def expected_rows(window) -> np.ndarray:
    t = (window.stamp_ns - T_BASE) / NS - np.arange(99, -1, -1) / 50.0
    accel, gyro = signal(t)
    return np.concatenate([accel, gyro], axis=1)


@pytest.mark.parametrize("imu_rate", [100.0, 50.0, 200.0, 37.0])
def test_any_imu_rate_is_resampled_onto_the_model_grid(imu_rate):
    """100 vs 50 Hz (and odd rates): same 50 Hz windows, values of the true motion at grid times."""
    w = ImuWindower(WindowConfig(window_length=100, sample_rate_hz=50.0, stride=25))
    windows = feed(w, samples(imu_rate, 4.0))
    assert len(windows) >= 3
    first = windows[0]
    assert first.data.shape == (100, 9) and first.data.dtype == np.float32
    assert first.stamp_ns == T_BASE + round(99 * NS / 50)  # grid anchored at the first sample
    for win in windows:
        np.testing.assert_allclose(win.data[:, :6], expected_rows(win), atol=2e-3 * (100 / imu_rate) ** 2 + 1e-5)
    assert [b.stamp_ns - a.stamp_ns for a, b in zip(windows, windows[1:])] == [25 * NS // 50] * (len(windows) - 1)


def test_100_and_50_hz_imus_give_matching_windows():
    w100 = feed(ImuWindower(WindowConfig()), samples(100.0, 3.0))
    w50 = feed(ImuWindower(WindowConfig()), samples(50.0, 3.0))
    assert w100[0].stamp_ns == w50[0].stamp_ns
    np.testing.assert_allclose(w100[0].data, w50[0].data, atol=5e-3)


def test_out_of_order_samples_within_tolerance_give_the_in_order_result():
    stream = samples(100.0, 3.0)
    shuffled = list(stream)
    for i in range(0, len(shuffled) - 1, 2):  # swap every pair: each sample 10 ms out of order
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    cfg = WindowConfig(reorder_tolerance=0.02)
    in_order, swapped = feed(ImuWindower(cfg), stream), feed(ImuWindower(cfg), shuffled)
    assert len(in_order) == len(swapped) >= 2
    for a, b in zip(in_order, swapped):
        assert a.stamp_ns == b.stamp_ns
        np.testing.assert_array_equal(a.data, b.data)


def test_samples_older_than_emitted_rows_are_dropped_and_counted():
    w = ImuWindower(WindowConfig())
    stream = samples(100.0, 3.0)
    feed(w, stream)
    before = w.stats.rows
    # 40 ms before the newest sample (within max_gap, so not a new timeline) but behind the emitted rows
    assert w.add_imu(stream[-5][0] + 1, np.zeros(3), np.zeros(3)) == []
    assert w.stats.late_samples == 1 and w.stats.rows == before


def test_duplicated_timestamps_are_ignored():
    stream = samples(100.0, 3.0)
    doubled = [s for s in stream for _ in range(2)]
    clean, dup_w = ImuWindower(WindowConfig()), ImuWindower(WindowConfig())
    a, b = feed(clean, stream), feed(dup_w, [(t, acc * (1 + k % 2), g) for k, (t, acc, g) in enumerate(doubled)])
    assert dup_w.stats.duplicates == len(stream)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.data, y.data)  # the first copy wins, the second is not mixed in


def test_non_finite_samples_are_dropped_and_counted():
    stream = samples(100.0, 2.5)
    clean = feed(ImuWindower(WindowConfig()), stream)
    w = ImuWindower(WindowConfig())
    poisoned = list(stream)
    t, a, g = poisoned[50]
    poisoned.insert(51, (t + 5_000_000, a, np.array([np.nan, 0.0, 0.0])))
    w.add_mag(T_BASE, (np.inf, 0.0, 0.0))
    got = feed(w, poisoned)
    assert w.stats.invalid_samples == 2 and w.stats.mag_samples == 0
    assert len(got) == len(clean) and np.isfinite(got[0].data).all()
    np.testing.assert_array_equal(got[0].data, clean[0].data)


def test_gap_resets_the_window_instead_of_interpolating_across_it():
    cfg = WindowConfig(max_gap=0.2, stride=25)
    w = ImuWindower(cfg)
    before = feed(w, samples(100.0, 2.5))
    assert len(before) == 1
    after = feed(w, samples(100.0, 3.0, start_s=3.0))  # 0.5 s of silence
    assert w.stats.resets == 1
    # a fresh window needs 100 new rows (2 s) after the gap; none mixes pre-gap samples
    assert after and after[0].stamp_ns == T_BASE + 3 * NS + round(99 * NS / 50)
    for win in after:
        np.testing.assert_allclose(win.data[:, :6], expected_rows(win), atol=2e-3)


def test_clock_jumping_back_restarts_the_window():
    w = ImuWindower(WindowConfig(stride=25))
    assert feed(w, samples(100.0, 2.5, start_s=10.0))
    again = feed(w, samples(100.0, 2.5, start_s=0.0))  # sim restarted at t = 0
    assert w.stats.resets == 1 and w.stats.late_samples == 0
    assert again and again[0].stamp_ns == T_BASE + round(99 * NS / 50)


def test_short_dropouts_below_max_gap_are_interpolated():
    stream = samples(100.0, 3.0)
    holey = stream[:120] + stream[130:]  # 100 ms missing < max_gap
    w = ImuWindower(WindowConfig(max_gap=0.2))
    windows = feed(w, holey)
    assert w.stats.resets == 0 and windows
    np.testing.assert_allclose(windows[0].data[:, :6], expected_rows(windows[0]), atol=2e-2)


def test_missing_magnetometer_gives_zeros_and_a_flag():
    w = ImuWindower(WindowConfig())
    windows = feed(w, samples(100.0, 2.5))
    assert windows[0].mag_missing and w.mag_missing
    np.testing.assert_array_equal(windows[0].data[:, 6:9], 0.0)


def test_magnetometer_is_held_between_its_samples_and_times_out():
    cfg = WindowConfig(mag_timeout=0.5)
    w = ImuWindower(cfg)
    for k in range(0, 41):  # 20 Hz magnetometer for 2 s
        w.add_mag(T_BASE + k * NS // 20, (20e-6 + k * 1e-7, -5e-6, 40e-6))
    windows = feed(w, samples(100.0, 2.1))
    assert len(windows) == 1 and not windows[0].mag_missing
    mag = windows[0].data[:, 6:9]
    assert np.all(mag[:, 2] == np.float32(40e-6))
    assert np.all(np.diff(mag[:, 0]) >= 0)  # zero-order hold of a rising field
    # the magnetometer stops at 2.0 s: after 0.5 s the rows are zeros and the window is flagged
    later = feed(w, samples(100.0, 1.0, start_s=2.1))
    assert later and later[-1].mag_missing and w.mag_missing
    np.testing.assert_array_equal(later[-1].data[-10:, 6:9], 0.0)


@pytest.mark.parametrize("stride", [1, 10, 25, 100])
def test_classifies_every_stride_rows(stride):
    w = ImuWindower(WindowConfig(stride=stride, reorder_tolerance=0.0))
    windows = feed(w, samples(50.0, 4.0))  # exactly 200 rows
    assert w.stats.rows == 200
    assert len(windows) == 1 + (200 - 100) // stride


@pytest.mark.parametrize("kwargs,match", [
    ({"window_length": 1}, "window_length"),
    ({"sample_rate_hz": 0.0}, "sample_rate_hz"),
    ({"stride": 0}, "stride"),
    ({"max_gap": -1.0}, "max_gap"),
    ({"reorder_tolerance": -0.1}, "reorder_tolerance"),
    ({"mag_timeout": 0.0}, "mag_timeout"),
])
def test_bad_window_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WindowConfig(**kwargs)


def test_ema_smoother_equals_direct_recursion():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), size=20)
    s = ProbabilitySmoother(SmootherConfig(method="ema", ema_alpha=0.25))
    ref = probs[0]
    for i, p in enumerate(probs):
        if i:
            ref = 0.25 * p + 0.75 * ref
        class_id, smoothed = s.update(p)
        np.testing.assert_allclose(smoothed, ref)
        assert class_id == int(np.argmax(ref))


def test_majority_vote_smoother_ignores_a_single_outlier():
    s = ProbabilitySmoother(SmootherConfig(method="majority", vote_window=5))
    a, b = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]
    labels = [s.update(p)[0] for p in (a, a, a, b, a, b)]
    assert labels == [0, 0, 0, 0, 0, 0]
    class_id, probs = s.update(b)  # window: a a b a b... last 5 = a, b, a, b, b -> b wins 3:2
    assert class_id == 1
    np.testing.assert_allclose(probs, np.mean([a, b, a, b, b], axis=0))
    tie = ProbabilitySmoother(SmootherConfig(method="majority", vote_window=2))
    tie.update(a)
    assert tie.update(b)[0] == 1  # 1:1 tie goes to the most recent label


def test_smoother_rejects_bad_input_and_config():
    with pytest.raises(ValueError, match="NaN"):
        ProbabilitySmoother(SmootherConfig()).update([np.nan, 1.0])
    with pytest.raises(ValueError, match="smoothing method"):
        SmootherConfig(method="median")
    with pytest.raises(ValueError, match="ema_alpha"):
        SmootherConfig(ema_alpha=0.0)
