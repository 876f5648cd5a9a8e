"""Bridge logic without ROS or serial: validation, watchdog, e-stop latch, arming, link state."""
from __future__ import annotations

import math

import pytest

from edge_inference.core.bridge_core import (
    LINK_CONNECTING,
    LINK_DOWN,
    LINK_UP,
    Backoff,
    BridgeCore,
    CommandRejected,
    LinkMonitor,
    RttTracker,
    validate_command,
)
from edge_inference.core.pwm_mapping import Calibration, ChannelCalibration, PwmMapper
from edge_inference.core.serial_protocol import FLAG_BRIDGE_TIMEOUT, FLAG_ESTOP


@pytest.fixture
def core():
    cal = Calibration(steering=ChannelCalibration(), throttle=ChannelCalibration(min_us=1300, max_us=1700))
    return BridgeCore(PwmMapper(cal), command_timeout=0.2)


@pytest.mark.parametrize("steering, throttle, reason", [
    (math.nan, 0.0, "steering is nan"), (0.0, math.inf, "throttle is inf"),
    (1.5, 0.0, "steering=1.500 outside"), (0.0, -1.01, "throttle=-1.010 outside")])
def test_invalid_commands_are_rejected_with_reason(steering, throttle, reason):
    with pytest.raises(CommandRejected, match=reason):
        validate_command(steering, throttle)


def test_watchdog_goes_neutral_after_timeout_and_counts_trips(core):
    assert core.output(0.0).reason == "no_command"
    assert core.on_command(0.5, 0.5, 1.0) is None
    out = core.output(1.1)
    assert (out.steering_us, out.throttle_us, out.reason, out.flags) == (1750, 1600, "command", 0)
    out = core.output(1.25)
    assert (out.steering_us, out.throttle_us, out.reason) == (1500, 1500, "timeout")
    assert out.flags & FLAG_BRIDGE_TIMEOUT and core.watchdog_trips == 1
    core.output(1.3)
    assert core.watchdog_trips == 1  # one trip per silence, not per tick
    core.on_command(-1.0, -1.0, 2.0)
    out = core.output(2.05)
    assert (out.steering_us, out.throttle_us) == (1000, 1300)


def test_rejected_command_drops_to_neutral_immediately(core):
    core.on_command(0.5, 0.5, 0.0)
    assert "not finite" in core.on_command(math.nan, 0.5, 0.05)
    out = core.output(0.06)  # well inside the timeout: neutral anyway
    assert (out.steering_us, out.throttle_us, out.reason) == (1500, 1500, "rejected")
    assert core.rejected == 1
    core.on_command(0.5, 0.5, 0.1)
    assert core.output(0.11).reason == "command"


def test_estop_latches_neutral_and_blocks_arming(core):
    assert core.set_arm(True) is None and core.arm_requested
    core.set_estop(True)
    assert not core.arm_requested
    core.on_command(1.0, 1.0, 0.0)
    out = core.output(0.01)
    assert (out.steering_us, out.throttle_us, out.reason) == (1500, 1500, "estop") and out.flags & FLAG_ESTOP
    assert "e-stop is latched" in core.set_arm(True)
    core.set_estop(False)
    assert not core.arm_requested  # releasing does not re-arm
    assert core.output(0.02).reason == "command"
    assert core.set_arm(True) is None


def test_backoff_doubles_caps_and_resets():
    b = Backoff(0.1, 0.5)
    assert [b.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.reset()
    assert b.next_delay() == 0.1


def test_link_monitor_states():
    link = LinkMonitor(link_timeout=0.5, handshake_timeout=1.0, backoff=Backoff(0.2, 1.0))
    assert link.state == LINK_DOWN and link.should_open(0.0)
    link.on_open(0.0)
    assert link.state == LINK_CONNECTING and link.check(0.5) is None
    assert "no VERSION" in link.check(1.1)
    link.on_handshake(0.3)
    assert link.state == LINK_UP and link.check(0.7) is None
    link.on_frame(0.7)
    assert "silent" in link.check(1.3)
    link.on_failure(1.3, "board silent")
    assert link.state == LINK_DOWN and link.reconnects == 1
    assert not link.should_open(1.4) and link.should_open(1.5)


def test_rtt_tracker_matches_by_type_and_seq():
    rtt = RttTracker()
    rtt.sent(1, 10, 0.000)
    rtt.sent(2, 10, 0.001)
    assert rtt.answered(1, 11, 0.01) is None
    assert rtt.answered(1, 10, 0.004) == pytest.approx(4.0)
    assert rtt.answered(1, 10, 0.005) is None  # answered once
    assert list(rtt.samples) == [pytest.approx(4.0)]
