"""cfn-lint over every synthesized template: zero errors (warnings are CDK-generated and listed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.synth


def test_cfn_lint_reports_no_errors(synthesized_app) -> None:
    paths = [str(p) for p in synthesized_app.template_paths()]
    assert len(paths) >= 2
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # the console script of the active venv
    run = subprocess.run([str(cfn_lint), "--format", "json", *paths],
                         capture_output=True, text=True, check=False)
    # cfn-lint's exit code is a bit mask (2 = errors, 4 = warnings, 8 = info); anything else, or
    # output that is not its JSON report, means it did not lint at all.
    assert run.returncode & ~(2 | 4 | 8) == 0, run.stderr[-2000:]
    assert run.stdout.lstrip().startswith("["), run.stderr[-2000:]
    findings = json.loads(run.stdout)
    assert run.returncode & 2 == 0 or findings
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)[:4000]
