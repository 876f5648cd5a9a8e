"""`edge-inference top` in a real terminal (tmux) against the running demo: sensible values on screen."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from edge_inference.ros.dashboard import Dashboard, TopicStats

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (Debian package `tmux`, in the Makefile's APT_PACKAGES)")


def _row(screen: str, label: str) -> list[str] | None:
    """Cells of the table row starting with ``label`` (borderless table: cells hold no spaces)."""
    for line in screen.splitlines():
        cells = line.split()
        if cells and cells[0] == label:
            return cells
    return None


def _line(screen: str, prefix: str) -> str | None:
    return next((ln.strip() for ln in screen.splitlines() if ln.strip().startswith(prefix)), None)


def _sensible(screen: str) -> list[str]:
    """What is still missing from the screen (empty when everything looks right)."""
    missing = []
    cmd = _row(screen, "vehicle/command")
    if not cmd or not 15.0 <= float(cmd[1]) <= 60.0:   # demo runs control at 30 Hz on a shared CPU
        missing.append(f"vehicle/command near 30 Hz: {cmd}")
    cam = _row(screen, "camera/image_raw")
    if not cam or float(cam[1]) < 5.0 or cam[2] == "-" or float(cam[2]) > 1.0:
        missing.append(f"camera frames arriving: {cam}")
    policy = _row(screen, "policy")
    if not policy or not re.fullmatch(r"[\d.]+/[\d.]+", policy[2]):
        missing.append(f"policy latency p50/p95: {policy}")
    elif not 0.0 <= float(policy[3].split("/")[0]) < 5000.0:
        missing.append(f"plausible end-to-end latency: {policy}")
    if not (_line(screen, "command:") or "").startswith("command:  steering"):
        missing.append("current command line")
    if not re.search(r"mode (AUTO|DISARMED|MANUAL|FAILSAFE|ESTOP)", screen):
        missing.append("board mode")
    if not (_line(screen, "link:") or "").startswith("link:     UP"):
        missing.append(f"link UP: {_line(screen, 'link:')}")
    beh = _line(screen, "behavior:")
    if not beh or not re.match(r"behavior: \w+ \(\d+%\)", beh):
        missing.append(f"behavior label: {beh}")
    return missing


def test_rate_is_not_diluted_right_after_start_and_ages_out():
    st = TopicStats()
    for i in range(10):
        st.record(100.0 + i * 0.1)            # 10 Hz for 1 s
    assert st.rate(101.0, listening_since=100.0) == pytest.approx(10.0)
    assert st.rate(101.0) == pytest.approx(5.0)   # over the full 2 s window
    assert st.rate(104.0) == 0.0 and st.age(104.0) == pytest.approx(3.1)
    dash = Dashboard(started=0.0)
    assert all(row[2] == "-" for row in dash.topic_rows(1.0))  # nothing received: no invented ages


def test_problems_worst_first_and_silent_statuses_turn_stale():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    dash = Dashboard(started=0.0)
    dash.on_message("diagnostics", DiagnosticArray(status=[
        DiagnosticStatus(name="a: ok", level=DiagnosticStatus.OK, message="fine"),
        DiagnosticStatus(name="b: rate", level=DiagnosticStatus.WARN, message="slow"),
        DiagnosticStatus(name="c: link", level=DiagnosticStatus.ERROR, message="down")]), now=10.0)
    assert dash.problem_lines(11.0) == ["ERROR c: link: down", "WARN  b: rate: slow"]
    dash.on_message("diagnostics", DiagnosticArray(status=[
        DiagnosticStatus(name="b: rate", level=DiagnosticStatus.OK, message="ok")]), now=20.0)
    lines = dash.problem_lines(21.0)   # a and c were not refreshed for 11 s: their nodes are gone
    assert len(lines) == 2 and all(ln.startswith("STALE") for ln in lines) and "was: down" in " ".join(lines)


@pytest.mark.timeout(240)
def test_top_under_tmux_shows_the_running_demo(tmp_path):
    env = dict(os.environ, TERM="xterm-256color")
    socket = f"ei-top-{uuid.uuid4().hex[:8]}"
    demo_log = open(tmp_path / "demo.log", "w")
    demo = subprocess.Popen([sys.executable, "-m", "edge_inference.cli", "demo", "--duration", "150"],
                            stdout=demo_log, stderr=subprocess.STDOUT, env=env)
    tmux = ["tmux", "-L", socket]
    screen = ""
    try:
        top_cmd = f"{sys.executable} -m edge_inference.cli top --duration 170 --refresh-hz 2"
        subprocess.run(tmux + ["new-session", "-d", "-s", "top", "-x", "80", "-y", "24", top_cmd],
                       check=True, env=env, timeout=10)
        deadline = time.monotonic() + 150  # normally seconds; a first demo run may build its models first
        missing = ["nothing captured yet"]
        while time.monotonic() < deadline and missing and demo.poll() is None:
            time.sleep(1.0)
            cap = subprocess.run(tmux + ["capture-pane", "-p", "-t", "top"], capture_output=True, text=True,
                                 env=env, timeout=10)
            if cap.returncode != 0:
                continue  # pane not ready yet
            screen = cap.stdout
            missing = _sensible(screen)
        assert not missing, (f"missing on screen: {missing}\n--- screen ---\n{screen}\n--- demo (exit code "
                             f"{demo.poll()}) ---\n{(tmp_path / 'demo.log').read_text()[-1500:]}")
        # refreshes in place: the table is drawn once on the screen, not appended
        assert screen.count("vehicle/command") == 1
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=10)
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
        demo_log.close()
