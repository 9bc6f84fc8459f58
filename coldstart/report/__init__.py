"""``coldstart report``: the phase timeline of a vLLM pod's cold start, compared with a budget.

Typical use (the CLI wires these together)::

    inputs = load_bundle("bundle/")                      # or collect_live("vllm-abc", "vllm")
    timeline = build_timeline(inputs)
    print(render_table(timeline, default_budget()))
    json.dumps(to_json(timeline, default_budget()))

See docs/coldstart.md for the phases, the budget and its sources.
"""

from coldstart.report.budget import (
    Budget,
    BudgetRow,
    budget_from_mapping,
    compare_budget,
    default_budget,
    load_budget,
)
from coldstart.report.errors import ReportError
from coldstart.report.inputs import ColdStartInputs, load_bundle, save_bundle
from coldstart.report.live import RunResult, collect_live
from coldstart.report.phases import PHASE_KEYS, PHASES
from coldstart.report.render import fmt_duration, render_budget, render_table, to_json
from coldstart.report.timeline import Phase, Timeline, build_timeline

__all__ = [
    "PHASES",
    "PHASE_KEYS",
    "Budget",
    "BudgetRow",
    "ColdStartInputs",
    "Phase",
    "ReportError",
    "RunResult",
    "Timeline",
    "budget_from_mapping",
    "build_timeline",
    "collect_live",
    "compare_budget",
    "default_budget",
    "fmt_duration",
    "load_budget",
    "load_bundle",
    "render_budget",
    "render_table",
    "save_bundle",
    "to_json",
]
