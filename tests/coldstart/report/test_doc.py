"""docs/coldstart.md stays true: its budget table is the code's default budget, and every config
key it names as a lever exists."""

import re

from coldstart.report import default_budget
from coldstart.report.phases import BY_KEY
from settings.config import REPO_ROOT, SCHEMA

DOC = (REPO_ROOT / "docs" / "coldstart.md").read_text()


def test_budget_table_matches_the_default_budget():
    section = DOC.split("## The budget", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (?:\*\*)?([^|*]+?)(?:\*\*)? \| (?:\*\*)?([^|*]+?)(?:\*\*)? \|", section, re.M))
    budget = default_budget()
    for key, seconds in budget.phases.items():
        assert rows[BY_KEY[key].label] == f"{seconds:.0f} s", key
    assert rows["Total"] == "3 min 10 s" and budget.total_s == 190


def test_levers_name_real_config_keys():
    section = DOC.split("## Levers", 1)[1].split("\n## ", 1)[0]
    keys = set(re.findall(r"`([a-z][A-Za-z]+)`", section)) - {"failureThreshold", "initialDelaySeconds"}
    assert keys, "the levers table names config keys"
    assert keys <= set(SCHEMA), sorted(keys - set(SCHEMA))
