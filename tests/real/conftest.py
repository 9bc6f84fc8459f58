"""The real-component layer: real binaries (containerd, the distribution registry, skopeo, the kernel
through setpriv/unshare) instead of doubles written beside the code they check.

Every test here needs root (namespaces, mounts, containerd) and the packages that
``tools/install-real-deps.sh`` installs (``make real-deps``). A missing piece FAILS with the command
that installs it: a skip would turn the layer green without running it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERD_DIR = REPO_ROOT / ".cache" / "containerd" / "usr" / "bin"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.real)


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
from tests.lambdas.conftest import defaults, pipeline_config, pipeline_template, world  # noqa: E402,F401
