"""``coldstart report --chart start.svg|start.png``: the phase waterfall of one start against the budget.

matplotlib (Agg backend, no display) draws one bar per phase, starting where the phases before it end,
so the bars walk from the pod's creation to Ready. Unknown phases are drawn as hatched gaps (their
seconds are unattributed, never guessed); an unfinished phase is drawn to the time spent in it so far.
The compile-cache sync runs (restore before vLLM, publish after Ready), when their JSON events are in
the evidence, get their own rows at their own times; the cache hit or miss is written on the chart.
A vertical line marks the budget's total.
"""

from __future__ import annotations

from pathlib import Path

from coldstart.report.budget import Budget
from coldstart.report.errors import ReportError
from coldstart.report.timeline import IN_PROGRESS, MEASURED, NOT_REACHED, Timeline

FORMATS = (".svg", ".png")
# measured within budget, measured over its phase budget, compile-cache sync, budget line / unfinished, unknown
_COLOURS = {MEASURED: "#4c72b0", IN_PROGRESS: "#dd8452", "cache": "#55a868", "budget": "#c44e52", "unknown": "#bbbbbb"}


def _cache_text(t: Timeline) -> str:
    restore = next((e for e in t.cache_events if e.event == "compile_cache_restore"), None)
    compiled = (t.compile or {}).get("cacheHit")
    parts = []
    if restore is not None:
        parts.append(f"S3 compile cache restore: {restore.result or '?'}")
    if compiled is True:
        parts.append("torch.compile: cache hit")
    elif compiled is False:
        parts.append("torch.compile: cache miss (compiled)")
    else:
        parts.append("torch.compile cache: unknown")
    return "; ".join(parts)


def render_chart(timeline: Timeline, budget: Budget | None, path: str | Path) -> Path:
    """Write the waterfall to ``path`` (.svg or .png, by extension) and return it."""
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise ReportError(f"--chart {out}: unknown image type {out.suffix or '(none)'!r}; use a .svg or .png file name")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    t = timeline
    rows: list[tuple[str, float, float, str, str]] = []  # label, start, width, colour, cell text
    at = 0.0
    allowed = budget.phases if budget else {}
    for p in t.phases:
        if p.status == MEASURED and p.seconds is not None:
            over = p.key in allowed and p.seconds > allowed[p.key]
            text = f"{p.seconds:.1f} s" + (f" (budget {allowed[p.key]:.0f} s)" if p.key in allowed else "")
            rows.append((p.label, at, p.seconds, _COLOURS[IN_PROGRESS] if over else _COLOURS[MEASURED], text))
            at += p.seconds
        elif p.status == IN_PROGRESS:
            width = p.at_least or 0.0
            rows.append((p.label, at, width, _COLOURS["budget"], f">= {width:.0f} s (not finished)"))
            at += width
        elif p.status == NOT_REACHED:
            rows.append((p.label, at, 0.0, _COLOURS["unknown"], "not reached"))
        else:
            rows.append((p.label, at, 0.0, _COLOURS["unknown"], "unknown"))
    for ev in t.cache_events:
        label = "Compile cache " + ev.event.removeprefix("compile_cache_")
        start = (ev.start - t.created).total_seconds() if ev.start else None
        if start is not None and ev.seconds is not None:
            rows.append((label, start, ev.seconds, _COLOURS["cache"], f"{ev.result or '?'}, {ev.seconds:.1f} s"))
        else:
            rows.append((label, 0.0, 0.0, _COLOURS["cache"], f"{ev.result or '?'} (time not in the log)"))

    total = t.total_s
    end = max([at, total or 0.0, budget.total_s if budget else 0.0] + [s + w for _, s, w, _, _ in rows])
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 3.0))
    try:
        for i, (_label, start, width, colour, text) in enumerate(rows):
            ax.barh(i, width, left=start, color=colour, edgecolor="black", linewidth=0.4)
            ax.text(start + width + end * 0.005, i, text, va="center", fontsize=8)
        if t.unattributed_s:
            # Unknown phases: their seconds lie between the known ones and Ready; drawn as one hatched span.
            ax.barh(len(rows), t.unattributed_s, left=at, color="white", edgecolor=_COLOURS["unknown"], hatch="//")
            ax.text(at + t.unattributed_s + end * 0.005, len(rows), f"{t.unattributed_s:.1f} s unattributed", va="center",
                    fontsize=8)
            labels = [r[0] for r in rows] + ["(unknown phases)"]
        else:
            labels = [r[0] for r in rows]
        ax.set_yticks(range(len(labels)), labels=labels)
        ax.invert_yaxis()
        if budget is not None:
            ax.axvline(budget.total_s, color=_COLOURS["budget"], linestyle="--", linewidth=1.2,
                       label=f"budget {budget.total_s:.0f} s ({budget.name})")
        if total is not None:
            ax.axvline(total, color="black", linewidth=1.0, label=f"ready {total:.0f} s")
        from matplotlib.patches import Patch

        handles, _ = ax.get_legend_handles_labels()
        handles.append(Patch(color=_COLOURS[MEASURED], label="measured"))
        if t.cache_events:
            handles.append(Patch(color=_COLOURS["cache"], label="compile-cache sync"))
        if budget is not None:
            handles.append(Patch(color=_COLOURS[IN_PROGRESS], label="over its phase budget"))
        if any(p.status == IN_PROGRESS for p in t.phases):
            handles.append(Patch(color=_COLOURS["budget"], label="not finished (lower bound)"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=7, frameon=False)
        ax.set_xlim(0, end * 1.18)
        ax.set_xlabel("seconds since the pod was created")
        outcome = f"ready in {total:.0f} s" if total is not None else t.outcome.replace("_", " ")
        extra = [_cache_text(t)] + ([f"data volume: {t.hydration.detail}"] if t.hydration else [])
        ax.set_title(f"vLLM cold start {t.namespace}/{t.pod_name}: {outcome}\n" + "; ".join(extra), fontsize=9)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=out.suffix.lower().lstrip("."), dpi=110,
                    metadata={"Date": None} if out.suffix.lower() == ".svg" else None)
    finally:
        plt.close(fig)
    return out
