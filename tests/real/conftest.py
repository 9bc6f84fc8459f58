"""The real-component layer: real binaries (containerd, the distribution registry, skopeo, the kernel
through setpriv/unshare) instead of doubles written beside the code they check.

Every test here needs root (namespaces, mounts, containerd) and the packages that
``tools/install-real-deps.sh`` installs (``make real-deps``). A missing piece FAILS with the command
that installs it: a skip would turn the layer green without running it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERD_DIR = REPO_ROOT / ".cache" / "containerd" / "usr" / "bin"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.real)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After a run that included this layer: the versions of the real components it ran against."""
    ran = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, []) if "tests/real/" in r.nodeid]
    if not ran:
        return
    terminalreporter.section("real components used")
    for command in ([str(CONTAINERD_DIR / "containerd"), "--version"], ["docker-registry", "--version"], ["skopeo", "--version"]):
        try:
            line = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except OSError as exc:
            line = f"{command[0]}: {exc}"
        terminalreporter.write_line(line)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the real-component layer needs root (namespaces, mounts, containerd): run `sudo make test-real`")


def require_binary(name: str, path: str | Path | None = None) -> str:
    found = str(path) if path and Path(path).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run `make real-deps` (tools/install-real-deps.sh)")
    return found


# The pipeline's session fixtures (its synthesized template, a fresh moto world per test): the real
# components' output is fed to the real state machine there.
from tests.pipeline.conftest import defaults, pipeline_config, pipeline_template, world  # noqa: E402,F401
