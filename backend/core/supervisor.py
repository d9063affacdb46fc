"""Supervision of the stack's processes: a component that dies is restarted after an
exponential back-off, and the supervisor gives up only when one keeps dying.

`RestartPolicy` is the decision alone (pure: deaths in, delay or "give up" out), so it is
tested without processes; `Supervisor` applies it to child processes, polled by its owner
(`make run`'s watch loop). Every death is reported through `report` with the component, its
exit code and how many deaths it had in the window.
"""

from __future__ import annotations

import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.core.config import Settings
from backend.core.errors import GridLedgerError
from backend.core.processes import stop_process


class ComponentKeepsDying(GridLedgerError):
    """A component died more often within the window than the policy tolerates."""

    def __init__(self, name: str, deaths: int, window_s: float, exit_code: int | None) -> None:
        super().__init__(
            f"{name} died {deaths} times within {window_s:g} s (last exit code {exit_code}); "
            "giving up"
        )
        self.name, self.deaths, self.exit_code = name, deaths, exit_code


@dataclass(frozen=True)
class RestartPolicy:
    """Back-off `initial_s * 2**(deaths in window - 1)`, capped at `max_s`; give up at the
    `max_deaths`-th death within `window_s` seconds."""

    initial_s: float = 1.0
    max_s: float = 30.0
    max_deaths: int = 5
    window_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RestartPolicy:
        return cls(
            initial_s=settings.supervisor_backoff_initial_s,
            max_s=settings.supervisor_backoff_max_s,
            max_deaths=settings.supervisor_max_deaths,
            window_s=settings.supervisor_death_window_s,
        )

    def recent(self, deaths: deque[float], now: float) -> int:
        """Forget deaths older than the window; how many remain."""
        while deaths and deaths[0] <= now - self.window_s:
            deaths.popleft()
        return len(deaths)

    def delay_after(self, deaths: deque[float], now: float) -> float | None:
        """Record a death at `now`; the back-off before the restart, or None to give up."""
        deaths.append(now)
        count = self.recent(deaths, now)
        if count >= self.max_deaths:
            return None
        return float(min(self.max_s, self.initial_s * 2 ** (count - 1)))


Report = Callable[[str, str], None]  # (component, message)


@dataclass
class Supervised:
    """One component: how to start it, its current process and its recent deaths."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    may_finish: bool = False  # exit code 0 means done (the simulator's finite run), not dead
    process: subprocess.Popen[bytes] | None = None
    deaths: deque[float] = field(default_factory=deque)
    restart_at: float | None = None  # monotonic time of the scheduled restart
    restarts: int = 0
    finished: bool = False


class Supervisor:
    """Starts components, notices deaths on `poll`, restarts after the back-off."""

    def __init__(
        self,
        policy: RestartPolicy,
        report: Report,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy, self.report, self.clock = policy, report, clock
        self.components: dict[str, Supervised] = {}

    def add(
        self, name: str, start: Callable[[], subprocess.Popen[bytes]], *, may_finish: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start component `name` now (in start order) and supervise it from then on."""
        component = Supervised(name, start, may_finish=may_finish)
        component.process = start()
        self.components[name] = component
        return component.process

    def process(self, name: str) -> subprocess.Popen[bytes] | None:
        return self.components[name].process

    def poll(self) -> None:
        """Restart what is due; schedule a restart for what died since the last poll.
        Raises ComponentKeepsDying when the policy gives up on a component."""
        now = self.clock()
        for component in self.components.values():
            process = component.process
            if component.finished:
                continue
            if process is None:
                if component.restart_at is not None and now >= component.restart_at:
                    component.restart_at = None
                    component.restarts += 1
                    component.process = component.start()
                    self.report(component.name, f"restarted (restart {component.restarts})")
                continue
            code = process.poll()
            if code is None:
                continue
            if component.may_finish and code == 0:
                component.finished = True
                self.report(component.name, "finished (exit code 0); not restarted")
                continue
            component.process = None
            delay = self.policy.delay_after(component.deaths, now)
            deaths = len(component.deaths)
            if delay is None:
                raise ComponentKeepsDying(component.name, deaths, self.policy.window_s, code)
            component.restart_at = now + delay
            self.report(
                component.name,
                f"died with exit code {code} ({deaths} death(s) in the last "
                f"{self.policy.window_s:g} s); restarting in {delay:g} s",
            )

    def stop(self, name: str, sig: int) -> None:
        """Stop one component for good (no restart)."""
        component = self.components[name]
        component.finished, component.restart_at = True, None
        if component.process is not None:
            stop_process(component.process, sig)

    def names(self) -> list[str]:
        return list(self.components)
