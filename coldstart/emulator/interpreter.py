"""Driving moto's Step Functions interpreter: turning execution on, and its waits (retry intervals, Wait states)."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any


def enable_state_machine_execution() -> None:
    """Make moto's Step Functions run definitions (what ``mock_aws(config=...)`` does), e.g. for a ThreadedMotoServer."""
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"]["execute_state_machine"] = True


@contextlib.contextmanager
def fast_retries() -> Iterator[None]:
    """Skip the waits of the definition's Retry intervals in moto's interpreter (the intervals stay in the definition)."""
    from unittest import mock

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _NoSleepTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            return None

    with mock.patch.object(retrier_decl, "time", _NoSleepTime()):
        yield


class VirtualClock:
    """Simulated time for the Wait states of moto's interpreter: a Wait takes no real time, yet the
    executions still meet in the order their waits would have ended.

    Virtual time stands still while any execution started under this clock is busy (running a state,
    a handler, or blocked on the test), and jumps to the earliest wake-up once every running execution
    sits in a Wait. So an execution polling for another one (the gate's WaitForOlderRun) counts one
    poll per interval the other one waited, exactly as on AWS, whatever the machine's speed; there is
    no timer to race. The definition is untouched: its SecondsPath still chooses each wait's length.
    One sleeper per execution is assumed (the pipeline has no Parallel or Map state).
    """

    def __init__(self) -> None:
        self.now = 0.0  # virtual seconds since the clock was installed
        self.waits: list[int] = []  # the seconds each Wait state asked for, in the order they began
        self._executions: list[Any] = []  # moto Execution objects started while installed
        self._wakes: dict[int, float] = {}  # one entry per sleeping Wait: its virtual wake-up time
        self._cond = threading.Condition()
        self._tokens = itertools.count()
        self._holds = 0  # open ``held()`` blocks: time stands still while any is open

    def _running(self) -> int:
        from moto.stepfunctions.parser.api import ExecutionStatus

        # None: registered, its worker not started yet (still busy, it will run)
        return sum(1 for e in self._executions if e.exec_status in (None, ExecutionStatus.RUNNING))

    def started(self, execution: Any) -> None:
        with self._cond:
            self._executions.append(execution)
            self._cond.notify_all()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Virtual time stands still inside, e.g. while a test starts executions that are to wait side by side
        (otherwise the first one's Wait may end before the second has started)."""
        with self._cond:
            self._holds += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                self._cond.notify_all()

    def forget(self, execution: Any) -> None:
        with self._cond:
            self._executions.remove(execution)
            self._cond.notify_all()

    def wait(self, env: Any, seconds: int) -> None:
        """One Wait state of ``env``'s execution: return once virtual time has passed ``seconds`` (or the run stopped)."""
        with self._cond:
            self.waits.append(seconds)
            if seconds <= 0:
                return
            token = next(self._tokens)
            self._wakes[token] = self.now + seconds
            try:
                while self.now < self._wakes[token] and env.is_running():
                    earliest = min(self._wakes.values())
                    # All asleep: time jumps to the first wake-up. Not if that one is already due: its thread must
                    # first get the lock to leave (spinning here with the lock held would starve it).
                    if not self._holds and earliest > self.now and len(self._wakes) >= self._running():
                        self.now = earliest
                        self._cond.notify_all()
                        continue
                    # Another execution is busy (or a due sleeper has yet to leave). Executions end (and stop) outside
                    # this clock, so look again soon; the decision above reads state only, never how long this took.
                    self._cond.wait(timeout=0.01)
            finally:
                del self._wakes[token]
                self._cond.notify_all()


@contextlib.contextmanager
def virtual_clock() -> Iterator[VirtualClock]:
    """Run moto's Wait states on a ``VirtualClock`` (for tests; the rehearsal keeps real waits)."""
    from unittest import mock

    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.backend.execution import Execution

    clock = VirtualClock()
    real_start = Execution.start

    def start(self: Any) -> None:
        clock.started(self)  # before the worker runs, so the clock never sees it sleeping while unregistered
        try:
            real_start(self)
        except BaseException:
            clock.forget(self)
            raise

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        clock.wait(env, wait_seconds)

    with mock.patch.object(Execution, "start", start), mock.patch.object(WaitFunction, "_wait_interval", wait_interval):
        yield clock
