"""The text table and the JSON document."""

import json

import pytest

from coldstart.report import default_budget, fmt_duration, render_table, to_json


@pytest.mark.parametrize("seconds,text", [(0, "0.0 s"), (38, "38.0 s"), (59.94, "59.9 s"), (190, "3 min 10 s"),
                                          (60, "1 min 0 s"), (None, "unknown"), (-17, "-17.0 s")])
def test_fmt_duration(seconds, text):
    assert fmt_duration(seconds) == text


def _row(table: str, label: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(label))


def test_table_names_largest_phase_and_budget(timeline_of):
    text = render_table(timeline_of("warm"), default_budget())
    assert "Outcome: ready in 2 min 53 s" in text
    assert "Largest phase: torch.compile, 57.9 s, 33% of the total" in text
    assert _row(text, "Node ready").split()[2:7] == ["38.0", "s", "37", "s", "+1.0"]
    assert "over" in _row(text, "Node ready") and "under" in _row(text, "torch.compile")
    assert "Over budget: Weights load" in text


def test_table_without_budget_has_no_budget_columns(timeline_of):
    text = render_table(timeline_of("warm"))
    assert "Budget" not in text.splitlines()[4] and "over" not in _row(text, "Node ready")


def test_table_reports_crash_loop_clearly(timeline_of):
    text = render_table(timeline_of("crash_loop"), default_budget())
    assert "NOT READY - crash-looping" in text
    assert "killed by the startup probe 3 time(s)" in text
    assert ">= 51.0 s" in _row(text, "torch.compile")
    assert "not reached" in _row(text, "CUDA graphs")
    assert "Problem: killed by its startup probe" in text


def test_table_shows_unknown_not_zero(timeline_of):
    text = render_table(timeline_of("missing_phases"), default_budget())
    for label in ("vLLM API init", "Weights load", "torch.compile"):
        assert _row(text, label).split()[len(label.split())] == "unknown"
    assert "Largest known phase: Container start" in text
    assert "122.5 s of the total belong to phases the evidence does not separate" in text


def test_json_shape(timeline_of):
    doc = to_json(timeline_of("warm"), default_budget())
    json.dumps(doc)  # serialisable as is
    assert doc["schemaVersion"] == 1 and doc["outcome"] == "ready"
    assert set(doc) >= {"pod", "createdAt", "readyAt", "totalSeconds", "phases", "largestPhase", "milestones",
                        "restarts", "startupProbe", "weights", "compile", "problems", "notes", "budget"}
    assert [p["phase"] for p in doc["phases"]] == ["node_ready", "image", "container_start", "api_init", "weights",
                                                   "torch_compile", "cuda_graphs", "engine_rest"]
    assert set(doc["phases"][0]) == {"phase", "label", "seconds", "status", "atLeastSeconds", "source", "detail"}
    assert doc["phases"][3]["seconds"] == 31.088  # rounded to milliseconds
    assert doc["largestPhase"] == {"phase": "torch_compile", "label": "torch.compile", "seconds": 57.9}
    assert doc["createdAt"] == "2025-06-12T10:30:00Z" and doc["readyAt"] == "2025-06-12T10:32:53Z"
    assert doc["startupProbe"]["windowSeconds"] == 260  # 120 + 10 x (15 - 1): what kubelet guarantees
    assert doc["budget"]["overBudget"] == ["node_ready", "weights"]
    total_row = doc["budget"]["rows"][-1]
    assert total_row == {"phase": "total", "measuredSeconds": 173.0, "budgetSeconds": 190.0, "deltaSeconds": -17.0,
                         "atLeastSeconds": None, "status": "under", "lever": None}
    assert [m["name"] for m in doc["milestones"]][:2] == ["pod created", "NodeClaim launched"]


def test_json_unknowns_are_null(timeline_of):
    doc = to_json(timeline_of("missing_phases"))
    phases = {p["phase"]: p for p in doc["phases"]}
    assert phases["weights"] == {"phase": "weights", "label": "Weights load", "seconds": None, "status": "unknown",
                                 "atLeastSeconds": None, "source": None, "detail": None}
    assert doc["unattributedSeconds"] == 122.455 and "budget" not in doc


def test_json_crash_loop(timeline_of):
    doc = to_json(timeline_of("crash_loop"))
    assert doc["outcome"] == "crash_loop" and doc["readyAt"] is None and doc["totalSeconds"] is None
    assert doc["totalAtLeastSeconds"] == 871.0
    assert doc["restarts"]["startupProbeKills"] == 3 and doc["restarts"]["previousAttemptStoppedIn"] == "torch.compile"
