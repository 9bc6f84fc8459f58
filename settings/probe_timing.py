"""When kubelet probes a container: the one place the probe arithmetic lives.

The charts size the startup probe with it (``settings.config``), the cold-start report explains a
startup-probe kill with it (``coldstart.report.timeline``) and the docs quote its numbers (a test
checks them). It follows kubelet's prober, ``pkg/kubelet/prober/worker.go`` (kubernetes/kubernetes,
release-1.33):

- ``run()`` starts a ticker of ``periodSeconds`` when the probe worker is created, which happens when
  the pod is admitted (``prober_manager.go`` ``AddPod``), before the container starts; ticks are not
  aligned with the container start. (After a kubelet restart the first tick is also delayed by a
  random fraction of the period.)
- ``doProbe()`` returns without probing while
  ``int32(time.Since(StartedAt).Seconds()) < InitialDelaySeconds``: no probe before the initial delay.
- Readiness and liveness workers return without probing until the startup probe has succeeded
  (``c.Started``); when it does, ``prober_manager.go`` ``UpdatePodStatus`` triggers a readiness run
  immediately (``manualTriggerCh``).
- A result counts only after ``failureThreshold`` consecutive failures (``resultRun``); then a
  startup or liveness failure restarts the container.

So with initial delay D, period P, failure threshold F and timeout T, measured from the container
start: the first probe starts in [D, D + P); the F-th consecutive failing probe starts in
[D + (F-1)P, D + FP) and fails at the latest T seconds later. A container that answers by
D + (F-1)P is never killed by its startup probe, whatever the tick phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeTiming:
    initial_delay_s: int
    period_s: int
    failure_threshold: int
    timeout_s: int = 1

    @property
    def first_probe_s(self) -> tuple[int, int]:
        """[earliest, latest) start of the first probe after the container starts."""
        return self.initial_delay_s, self.initial_delay_s + self.period_s

    @property
    def guaranteed_s(self) -> int:
        """Time from container start the container surely gets before a startup-probe kill.

        The F-th failing probe starts no earlier than D + (F-1)P; a container answering by then passes.
        """
        return self.initial_delay_s + (self.failure_threshold - 1) * self.period_s

    @property
    def latest_kill_s(self) -> int:
        """Latest time after the container start at which the F-th failure can be recorded."""
        return self.initial_delay_s + self.failure_threshold * self.period_s + self.timeout_s

    @property
    def detection_delay_s(self) -> int:
        """Longest delay between the port answering and the startup probe seeing it (one period;
        readiness is then probed immediately)."""
        return self.period_s

    def worst_detection_delay_s(self, up_after_s: float) -> float:
        """Longest wait from the port answering, ``up_after_s`` after the container start, to the
        startup probe that sees it (readiness is then probed at once).

        Before the initial delay nothing probes: the first probe starts in [D, D + P), so a port up at
        t < D waits up to D + P - t. After it a tick comes within one period: up to P.
        """
        return max(self.initial_delay_s - up_after_s, 0.0) + self.period_s

    def mean_detection_delay_s(self, up_after_s: float) -> float:
        """The same wait averaged over the ticker's phase (uniform, as the ticker starts at pod
        admission): P/2 after the initial delay, D + P/2 - t before it."""
        return max(self.initial_delay_s - up_after_s, 0.0) + self.period_s / 2


def failure_threshold_for(budget_s: int, initial_delay_s: int, period_s: int) -> int:
    """The smallest failure threshold whose guaranteed window covers ``budget_s``.

    D + (F-1)P >= budget  <=>  F >= (budget - D)/P + 1; at least 1.
    """
    if period_s < 1:
        raise ValueError(f"period_s must be >= 1, got {period_s}")
    return max(1, math.ceil(max(budget_s - initial_delay_s, 0) / period_s) + 1)


def describe_window(timing: ProbeTiming) -> str:
    """How the docs and the report write the guaranteed window, e.g. ``120 s + 10 s x (16 - 1) = 270 s``."""
    return (f"{timing.initial_delay_s} s + {timing.period_s} s x ({timing.failure_threshold} - 1) "
            f"= {timing.guaranteed_s} s")
