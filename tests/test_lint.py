"""ruff over the whole repository (generated cdk8s imports excluded in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from settings.config import REPO_ROOT


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    run = subprocess.run([str(ruff), "check", "--no-cache", "--output-format", "concise", "."],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
