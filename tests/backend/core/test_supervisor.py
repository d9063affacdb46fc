"""The supervisor's restart policy (pure) and supervision of real child processes: one that
dies once is restarted after its back-off, one that crash-loops ends the supervision."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import deque

import pytest

from backend.core.supervisor import ComponentKeepsDying, RestartPolicy, Supervisor


def test_back_off_doubles_per_death_and_is_capped():
    policy = RestartPolicy(initial_s=1, max_s=5, max_deaths=10, window_s=100)
    deaths: deque[float] = deque()
    delays = [policy.delay_after(deaths, now) for now in (0, 1, 2, 3, 4)]
    assert delays == [1, 2, 4, 5, 5]


def test_policy_gives_up_at_max_deaths_within_the_window_only():
    policy = RestartPolicy(initial_s=1, max_s=30, max_deaths=3, window_s=60)
    deaths: deque[float] = deque()
    assert policy.delay_after(deaths, 0) == 1
    assert policy.delay_after(deaths, 10) == 2
    assert policy.delay_after(deaths, 20) is None  # third death within 60 s

    spaced: deque[float] = deque()
    assert policy.delay_after(spaced, 0) == 1
    assert policy.delay_after(spaced, 50) == 2
    assert policy.delay_after(spaced, 100) == 2  # the death at 0 left the window
    assert list(spaced) == [50, 100]


def child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def poll_until(supervisor: Supervisor, done, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "supervisor did not get there in time"
        supervisor.poll()
        time.sleep(0.02)


def test_a_component_that_dies_once_is_restarted_after_its_back_off(tmp_path):
    marker = tmp_path / "ran-once"
    # first run: leave a marker and die with 9; later runs: keep running
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "if not p.exists():\n    p.touch(); sys.exit(9)\n"
        "time.sleep(60)\n"
    )
    reports: list[tuple[str, str]] = []
    supervisor = Supervisor(
        RestartPolicy(initial_s=0.3, max_s=1, max_deaths=3, window_s=60),
        lambda name, message: reports.append((name, message)),
    )
    first = supervisor.add("worker", lambda: child(code))
    died_at: list[float] = []

    def restarted() -> bool:
        if not died_at and first.poll() is not None:
            died_at.append(time.monotonic())
        return supervisor.components["worker"].restarts == 1

    try:
        poll_until(supervisor, restarted)
        restarted_after = time.monotonic() - died_at[0]
        second = supervisor.process("worker")
        assert second is not None and second.pid != first.pid and second.poll() is None
        assert reports[0][0] == "worker"
        assert "died with exit code 9" in reports[0][1] and "1 death(s)" in reports[0][1]
        assert "restarting in 0.3 s" in reports[0][1]
        assert reports[1] == ("worker", "restarted (restart 1)")
        assert restarted_after >= 0.25  # the back-off was waited (less polling slack)
        time.sleep(0.3)
        supervisor.poll()
        assert supervisor.components["worker"].restarts == 1  # still up: no restart
    finally:
        supervisor.stop("worker", 15)
    assert second.poll() is not None


def test_a_crash_looping_component_ends_supervision_naming_it():
    reports: list[tuple[str, str]] = []
    supervisor = Supervisor(
        RestartPolicy(initial_s=0.05, max_s=0.1, max_deaths=3, window_s=60),
        lambda name, message: reports.append((name, message)),
    )
    supervisor.add("steady", lambda: child("import time; time.sleep(60)"))
    supervisor.add("looper", lambda: child("import sys; sys.exit(7)"))
    try:
        with pytest.raises(ComponentKeepsDying) as raised:
            poll_until(supervisor, lambda: False)
        assert raised.value.name == "looper" and raised.value.exit_code == 7
        assert raised.value.deaths == 3
        assert "looper died 3 times within 60 s (last exit code 7)" in str(raised.value)
        assert [m for n, m in reports if n == "looper" and "died" in m][1].startswith(
            "died with exit code 7 (2 death(s)"
        )
        assert supervisor.process("steady").poll() is None  # the others were left alone
    finally:
        for name in supervisor.names():
            supervisor.stop(name, 15)


def test_a_component_allowed_to_finish_is_not_restarted():
    reports: list[tuple[str, str]] = []
    supervisor = Supervisor(RestartPolicy(initial_s=0.05), lambda n, m: reports.append((n, m)))
    supervisor.add("sim", lambda: child("pass"), may_finish=True)
    poll_until(supervisor, lambda: supervisor.components["sim"].finished)
    time.sleep(0.1)
    supervisor.poll()
    assert reports == [("sim", "finished (exit code 0); not restarted")]
    assert supervisor.components["sim"].restarts == 0
