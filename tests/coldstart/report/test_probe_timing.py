"""The probe arithmetic (settings.probe_timing) against a step-by-step model of kubelet's prober.

The model below replays ``pkg/kubelet/prober/worker.go`` tick by tick: a ticker started when the
worker is created (before the container starts, at an arbitrary phase), no probe while
``int32(elapsed) < initialDelaySeconds``, a kill after ``failureThreshold`` consecutive failures. The
closed forms used by the charts, the report and the docs must agree with it for every phase.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from settings.config import load_default_config
from settings.probe_timing import ProbeTiming, failure_threshold_for


def kubelet_kill_time(delay: int, period: int, threshold: int, phase: Fraction, ready_at: Fraction | None) -> Fraction | None:
    """Start time (after container start) of the probe that records the kill, or None if the container passes."""
    failures = 0
    tick = -phase  # the worker's ticks relative to the container start: -phase + k * period
    while tick < 0:
        tick += period
    while True:
        if int(tick) >= delay:  # worker.go: int32(time.Since(StartedAt).Seconds()) < InitialDelaySeconds -> skip
            if ready_at is not None and tick >= ready_at:
                return None
            failures += 1
            if failures >= threshold:
                return tick
        tick += period


PHASES = [Fraction(0), Fraction(1, 3), Fraction(1, 2), Fraction(9, 10), Fraction(99, 100)]


@pytest.mark.parametrize("delay, period, threshold", [(120, 10, 16), (0, 10, 3), (30, 4, 7), (5, 60, 1), (119, 10, 2)])
def test_closed_forms_match_the_tick_model(delay: int, period: int, threshold: int) -> None:
    timing = ProbeTiming(delay, period, threshold)
    # sampled phases, plus the one whose tick lands exactly on the initial delay (the earliest case)
    phases = [p * period for p in PHASES] + [Fraction((-delay) % period)]
    kills = [kubelet_kill_time(delay, period, threshold, phase, None) for phase in phases]
    # The F-th failure is recorded no earlier than the guaranteed window, and before D + F x P.
    assert min(kills) == timing.guaranteed_s
    assert all(timing.guaranteed_s <= k < timing.latest_kill_s for k in kills)
    # A container ready by the guaranteed window always passes, whatever the tick phase...
    for phase in phases:
        assert kubelet_kill_time(delay, period, threshold, phase, Fraction(timing.guaranteed_s)) is None
    # ...and one ready a moment later is killed for some phase: the window is tight.
    late = Fraction(timing.guaranteed_s) + Fraction(1, 100)
    assert any(kubelet_kill_time(delay, period, threshold, phase, late) is not None for phase in phases)


def test_the_first_probe_waits_for_the_initial_delay() -> None:
    timing = ProbeTiming(120, 10, 16)
    assert timing.first_probe_s == (120, 130)


@pytest.mark.parametrize("budget, delay, period", [(270, 120, 10), (3600, 0, 60), (31, 30, 1), (600, 599, 60), (10, 10, 5)])
def test_failure_threshold_for_covers_the_budget_with_at_most_one_extra_period(budget: int, delay: int, period: int) -> None:
    threshold = failure_threshold_for(budget, delay, period)
    guaranteed = ProbeTiming(delay, period, threshold).guaranteed_s
    assert guaranteed >= budget
    assert guaranteed - budget < period or threshold == 1


def kubelet_detection_time(delay: int, period: int, phase: Fraction, up_at: Fraction) -> Fraction:
    """Start time (after container start) of the first startup probe that finds the port up."""
    tick = -phase
    while tick < 0:
        tick += period
    while int(tick) < delay or tick < up_at:
        tick += period
    return tick


@pytest.mark.parametrize("delay, period, up_at", [(0, 2, Fraction(95)), (5, 2, Fraction(3)), (120, 10, Fraction(40)),
                                                  (120, 10, Fraction(105)), (120, 10, Fraction(150)), (0, 10, Fraction(77, 2))])
def test_detection_delay_matches_the_tick_model(delay: int, period: int, up_at: Fraction) -> None:
    timing = ProbeTiming(delay, period, 1000)
    phases = [p * period for p in PHASES] + [Fraction((-delay) % period),
                                           (Fraction(1, 1000) - max(up_at, delay)) % period]  # a tick just too early
    waits = [kubelet_detection_time(delay, period, phase, up_at) - up_at for phase in phases]
    worst = timing.worst_detection_delay_s(float(up_at))
    # Never longer than the closed form; the tick just before the port answers comes close to it.
    assert all(0 <= w < worst for w in waits)
    assert max(waits) > worst - Fraction(1, 100)
    # The mean over a uniform ticker phase: one fine grid of phases.
    grid = [Fraction(i, 200) * period for i in range(200)]
    mean = sum(kubelet_detection_time(delay, period, phase, up_at) - up_at for phase in grid) / len(grid)
    assert abs(float(mean) - timing.mean_detection_delay_s(float(up_at))) <= period / 200


def test_the_seed_probe_held_a_cache_hit_back_and_the_defaults_do_not() -> None:
    """The issue's example: a start up 40 s after the container started waited ~80-90 s under the
    seed's 120 s delay; the defaults see it within one 2 s period."""
    assert ProbeTiming(120, 10, 16).worst_detection_delay_s(40) == 90
    cfg = load_default_config()
    timing = ProbeTiming(cfg.startupProbeInitialDelaySeconds, cfg.startupProbePeriodSeconds, cfg.startup_failure_threshold)
    assert timing.worst_detection_delay_s(40) == 2


def test_the_defaults_give_the_budget_the_docs_quote() -> None:
    cfg = load_default_config()
    timing = ProbeTiming(cfg.startupProbeInitialDelaySeconds, cfg.startupProbePeriodSeconds, cfg.startup_failure_threshold,
                         cfg.startupProbeTimeoutSeconds)
    # Readiness noticed at once: no initial delay to speak of (0-5 s), a 2 s period...
    assert cfg.startupProbeInitialDelaySeconds <= 5 and cfg.startupProbePeriodSeconds == 2
    # ...and still the whole budget before a restart: 0 + 2 x (136 - 1) = 270 s.
    assert timing.guaranteed_s >= cfg.startupBudgetSeconds
    assert timing.guaranteed_s - cfg.startupBudgetSeconds < cfg.startupProbePeriodSeconds
    assert (timing.guaranteed_s, cfg.startup_failure_threshold) == (270, 136)


def test_the_docs_quote_the_window_this_module_computes() -> None:
    from pathlib import Path

    from settings.probe_timing import describe_window

    cfg = load_default_config()
    window = describe_window(ProbeTiming(cfg.startupProbeInitialDelaySeconds, cfg.startupProbePeriodSeconds,
                                         cfg.startup_failure_threshold))
    root = Path(__file__).resolve().parents[3]
    for doc in ("README.md", "docs/manifests.md", "docs/coldstart.md"):
        text = " ".join((root / doc).read_text().split())
        assert window in text, f"{doc} does not quote the startup window {window!r} (settings.probe_timing)"
        assert "120 + 10 × 15" not in text and "120 + 10 x 15" not in text, f"{doc} still has the old arithmetic"
        assert "120 s + 10 s x (16 - 1)" not in text, f"{doc} still quotes the seed's probe window"
