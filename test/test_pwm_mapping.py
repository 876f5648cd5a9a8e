"""Per-channel calibration, clamps, rate limits, and the calibration file."""
from __future__ import annotations

import math

import pytest

from edge_inference.core.pwm_mapping import (
    Calibration,
    CalibrationError,
    ChannelCalibration,
    PwmMapper,
    RateLimiter,
    default_calibration_path,
    load_calibration,
    save_calibration,
)


def test_piecewise_linear_around_neutral_with_asymmetric_range():
    ch = ChannelCalibration(center_us=1500, min_us=1300, max_us=1900)
    assert [ch.to_us(x) for x in (-1.0, -0.5, 0.0, 0.5, 1.0)] == [1300, 1400, 1500, 1700, 1900]
    assert ch.to_us(3.0) == 1900 and ch.to_us(-3.0) == 1300  # clamped, never beyond min/max
    assert ch.to_normalized(1700) == pytest.approx(0.5) and ch.to_normalized(1400) == pytest.approx(-0.5)


def test_trim_reverse_deadband_limit():
    ch = ChannelCalibration(center_us=1500, min_us=1000, max_us=2000, trim_us=20, reverse=True,
                            deadband=0.1, limit=0.5)
    assert ch.neutral_us == 1520
    assert ch.to_us(0.05) == 1520                      # inside the deadband
    assert ch.to_us(1.0) == ch.to_us(0.5) == 1260       # limited to 0.5, reversed: 1520 - 0.5*520
    assert ch.to_us(-0.5) == 1760                       # 1520 + 0.5*480
    assert ch.to_normalized(1260) == pytest.approx(0.5)
    with pytest.raises(CalibrationError, match="non-finite"):
        ch.to_us(math.nan)


@pytest.mark.parametrize("kwargs, message", [
    (dict(min_us=1600, max_us=1400), "min_us < max_us"),
    (dict(min_us=500), "800 <= min_us"),
    (dict(trim_us=600), "outside"),
    (dict(deadband=0.9), "deadband"),
    (dict(limit=math.nan), "limit"),
    (dict(center_us=1500.0), "integer"),
])
def test_invalid_calibration_is_rejected_with_reason(kwargs, message):
    with pytest.raises(CalibrationError, match=message):
        ChannelCalibration(**kwargs).validate("steering")


def test_rate_limiter_slows_moves_away_from_neutral_only():
    r = RateLimiter(max_rate=2.0)  # full scale in 0.5 s
    assert r.step(1.0, 0.0) == 0.0
    assert r.step(1.0, 0.1) == pytest.approx(0.2)
    assert r.step(1.0, 0.2) == pytest.approx(0.4)
    assert r.step(0.1, 0.21) == pytest.approx(0.1)     # toward neutral: immediate
    assert r.step(-1.0, 0.31) == pytest.approx(-0.2)   # sign change: through neutral at once, then limited
    assert RateLimiter(0.0).step(0.7, 0.0) == 0.7


def test_mapper_neutral_resets_rate_state():
    cal = Calibration(throttle=ChannelCalibration(min_us=1300, max_us=1700, max_rate=1.0))
    m = PwmMapper(cal)
    m.map(0.0, 1.0, 0.0)
    assert m.map(0.0, 1.0, 0.5) == (1500, 1600)
    assert m.neutral() == (1500, 1500)
    m.map(0.0, 1.0, 10.0)
    assert m.map(0.0, 1.0, 10.1) == (1500, 1520)       # starts from neutral again, not from 0.5


def test_calibration_file_round_trip_and_repo_file(tmp_path):
    cal = Calibration(steering=ChannelCalibration(center_us=1480, min_us=1100, max_us=1900, trim_us=-5,
                                                  reverse=True, deadband=0.02),
                      throttle=ChannelCalibration(min_us=1350, max_us=1650, max_rate=2.0))
    path = tmp_path / "calibration.yaml"
    save_calibration(cal, path)
    assert load_calibration(path) == cal
    repo = load_calibration(default_calibration_path())
    assert repo.neutral_us() == (1500, 1500)
    assert [lim.max_us for lim in repo.board_limits()] == [repo.steering.max_us, repo.throttle.max_us]


def test_bad_calibration_files_fail_clearly(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration(tmp_path / "missing.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("steering:\n  centre_us: 1500\n")
    with pytest.raises(CalibrationError, match="unknown keys in calibration.steering: \\['centre_us'\\]"):
        load_calibration(p)
    p.write_text("throttle:\n  min_us: 1800\n  max_us: 1700\n")
    with pytest.raises(CalibrationError, match="throttle"):
        load_calibration(p)
