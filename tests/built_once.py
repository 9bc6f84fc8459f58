"""Session-wide build products shared by pytest-xdist's workers (one synth per session, not one per worker)."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def built_once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder ``build`` fills once per test session, shared by the xdist workers: the first worker to need it
    builds it under a file lock while the others wait, then all read it (a synth costs a core for many seconds).
    A failed build leaves no marker, so every worker that needs the folder fails with its own error."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder; each worker's basetemp is a subfolder of it
    out = base / f"once-{name}"
    with (base / f"once-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this worker dies
        if not (out / ".complete").exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            build(out)
            (out / ".complete").touch()
    return out
