"""Presenting a timeline: a plain-text table (stable, greppable, fine in CI logs) and JSON."""

from __future__ import annotations

from typing import Any

from coldstart.report.budget import Budget, BudgetRow, compare_budget
from coldstart.report.kube import iso
from coldstart.report.phases import BY_KEY
from coldstart.report.timeline import IN_PROGRESS, MEASURED, NOT_REACHED, CacheEvent, Timeline

JSON_SCHEMA_VERSION = 1


def fmt_duration(seconds: float | None, *, decimals: int = 1) -> str:
    """``38.0 s``, ``3 min 10 s``; whole seconds past a minute (the evidence is no finer)."""
    if seconds is None:
        return "unknown"
    if abs(seconds) < 60:
        return f"{seconds:.{decimals}f} s"
    sign = "-" if seconds < 0 else ""
    minutes, rest = divmod(round(abs(seconds)), 60)
    return f"{sign}{minutes} min {rest} s"


def _fmt_delta(delta: float | None) -> str:
    if delta is None:
        return ""
    return ("+" if delta > 0 else "") + fmt_duration(delta)


def _measured_cell(status: str, seconds: float | None, at_least: float | None) -> str:
    if status == IN_PROGRESS:
        return f">= {fmt_duration(at_least)}" if at_least is not None else "in progress"
    if status == NOT_REACHED:
        return "not reached"
    return fmt_duration(seconds)


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for r in [header, *rows]:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
    return out


def _headline(t: Timeline) -> list[str]:
    lines = [f"vLLM cold start: {t.namespace}/{t.pod_name} (container {t.container}"
             + (f", vLLM {t.vllm_version})" if t.vllm_version else ")")]
    where = [f"node {t.node_name}" if t.node_name else "node unknown"]
    if t.nodeclaim:
        where.append(f"NodeClaim {t.nodeclaim} ({t.instance_type or '?'}, {t.capacity_type or '?'})")
    lines.append(", ".join(where))
    if t.outcome == "ready":
        lines.append(f"Outcome: ready in {fmt_duration(t.total_s)} (pod created {iso(t.created)} -> {t.ready_source})")
    else:
        words = {"crash_loop": "NOT READY - crash-looping", "failed": "NOT READY - container terminated",
                 "starting": "not ready yet"}[t.outcome]
        spent = t.total_at_least_s
        lines.append(f"Outcome: {words}" + (f" (>= {fmt_duration(spent)} since the pod was created)" if spent else ""))
    if t.hydration is not None:
        lines.append(f"Data volume: {t.hydration.detail}")
    for ev in t.cache_events:
        lines.append(f"Compile cache: {cache_event_text(ev)}")
    if t.restarts.count:
        lines.append(f"Restarts: {t.restarts.count}; killed by the startup probe {t.restarts.startup_probe_kills} time(s)"
                     + (f"; previous attempt stopped in {t.restarts.previous_attempt_stopped_in}"
                        if t.restarts.previous_attempt_stopped_in else ""))
    return lines


def cache_event_text(ev: CacheEvent) -> str:
    """``restore: hit, 2 unit(s), 41 MiB in 1.9 s`` from a compile-cache sync event."""
    what = ev.event.removeprefix("compile_cache_")
    parts = [f"{what}: {ev.result or '?'}"]
    count = ev.fields.get("restored" if what == "restore" else "published")
    size = ev.fields.get("bytes")
    if isinstance(count, int) and count:
        parts.append(f"{count} unit(s)" + (f", {size / 2**20:.0f} MiB" if isinstance(size, (int, float)) else ""))
    if ev.seconds is not None:
        parts.append(f"in {ev.seconds:.1f} s")
    if ev.fields.get("error"):
        parts.append(str(ev.fields["error"])[:120])
    return ", ".join(parts)


def render_table(timeline: Timeline, budget: Budget | None = None) -> str:
    """The report as text: headline, one row per phase (with the budget when given), the largest
    phase, problems and notes."""
    t = timeline
    lines = _headline(t) + [""]
    rows_by_key = {r.key: r for r in compare_budget(t, budget)} if budget else {}
    header = ["Phase", "Measured"] + (["Budget", "Delta", "Status"] if budget else []) + ["Detail"]
    rows = []
    for p in t.phases:
        row = [p.label, _measured_cell(p.status, p.seconds, p.at_least)]
        if budget:
            b = rows_by_key[p.key]
            row += [fmt_duration(b.budget_s, decimals=0) if b.budget_s is not None else "-", _fmt_delta(b.delta_s), b.status]
        row.append(p.detail)
        rows.append(row)
    total_cell = fmt_duration(t.total_s) if t.total_s is not None else (
        f">= {fmt_duration(t.total_at_least_s)}" if t.total_at_least_s is not None else "unknown")
    total = ["Total", total_cell]
    if budget:
        b = rows_by_key["total"]
        total += [fmt_duration(b.budget_s, decimals=0), _fmt_delta(b.delta_s), b.status]
    total.append(f"pod created -> {t.ready_source}" if t.ready_at else "")
    rows.append(total)
    right = {1, 2, 3} if budget else {1}
    lines += _table(header, rows, right)
    lines.append("")
    if (big := t.largest) is not None:
        share = f", {100 * (big.seconds or 0) / t.total_s:.0f}% of the total" if t.total_s else ""
        qualifier = "" if all(p.status == MEASURED for p in t.phases) else " known"
        lines.append(f"Largest{qualifier} phase: {big.label}, {fmt_duration(big.seconds)}{share}")
    if budget:
        for b in (r for r in rows_by_key.values() if r.status == "over" and r.lever):
            lines.append(f"Over budget: {b.label} ({_fmt_delta(b.delta_s)}): {b.lever}")
    lines += [f"Problem: {p}" for p in t.problems]
    lines += [f"Note: {n}" for n in t.notes]
    return "\n".join(lines).rstrip() + "\n"


def render_budget(budget: Budget) -> str:
    """The budget alone, phase by phase with its sources (the published breakdown by default)."""
    rows = [[BY_KEY[k].label, fmt_duration(s, decimals=0), budget.sources.get(k, "")] for k, s in budget.phases.items()]
    rows.append(["Total", fmt_duration(budget.total_s, decimals=0), ""])
    return "\n".join([f"Cold-start budget: {budget.name}", "", *_table(["Phase", "Budget", "Source"], rows, {1})]) + "\n"


def _row_json(r: BudgetRow) -> dict[str, Any]:
    return {"phase": r.key, "measuredSeconds": r.measured_s, "budgetSeconds": r.budget_s, "deltaSeconds": r.delta_s,
            "atLeastSeconds": r.at_least_s, "status": r.status, "lever": r.lever}


def _rounded(value: Any) -> Any:
    """Milliseconds are the finest the evidence gets; drop float noise below that."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def to_json(timeline: Timeline, budget: Budget | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict (schemaVersion 1). Unknown numbers are null, never 0."""
    return _rounded(_to_json(timeline, budget))


def _to_json(timeline: Timeline, budget: Budget | None) -> dict[str, Any]:
    t = timeline
    big = t.largest
    out: dict[str, Any] = {
        "schemaVersion": JSON_SCHEMA_VERSION,
        "pod": {"name": t.pod_name, "namespace": t.namespace, "container": t.container, "image": t.image,
                "node": t.node_name, "nodeClaim": t.nodeclaim, "instanceType": t.instance_type,
                "capacityType": t.capacity_type, "vllmVersion": t.vllm_version},
        "outcome": t.outcome,
        "createdAt": iso(t.created),
        "readyAt": iso(t.ready_at),
        "readySource": t.ready_source if t.ready_at else None,
        "totalSeconds": t.total_s,
        "totalAtLeastSeconds": t.total_at_least_s,
        "unattributedSeconds": t.unattributed_s,
        "phases": [{"phase": p.key, "label": p.label, "seconds": p.seconds, "status": p.status,
                    "atLeastSeconds": p.at_least, "source": p.source or None, "detail": p.detail or None}
                   for p in t.phases],
        "largestPhase": {"phase": big.key, "label": big.label, "seconds": big.seconds} if big else None,
        "milestones": [{"name": m.name, "at": iso(m.at), "source": m.source, "exact": m.exact} for m in t.milestones],
        "restarts": {"count": t.restarts.count, "startupProbeKills": t.restarts.startup_probe_kills,
                     "startupProbeFailures": t.restarts.startup_probe_failures,
                     "lastTermination": t.restarts.last_termination,
                     "previousAttemptStoppedIn": t.restarts.previous_attempt_stopped_in},
        "startupProbe": ({"initialDelaySeconds": t.startup_probe.initial_delay_s, "periodSeconds": t.startup_probe.period_s,
                          "failureThreshold": t.startup_probe.failure_threshold, "windowSeconds": t.startup_probe.window_s}
                         if t.startup_probe else None),
        "weights": t.weights,
        "compile": t.compile,
        "hydration": t.hydration.to_json() if t.hydration else None,
        "compileCacheSync": [{"event": e.event, "result": e.result, "seconds": e.seconds,
                              "endedAt": iso(e.end) if e.end else None} for e in t.cache_events],
        "problems": list(t.problems),
        "notes": list(t.notes),
    }
    if budget is not None:
        rows = compare_budget(t, budget)
        out["budget"] = {"name": budget.name, "totalSeconds": budget.total_s,
                         "rows": [_row_json(r) for r in rows],
                         "overBudget": [r.key for r in rows if r.status == "over"]}
    return out
