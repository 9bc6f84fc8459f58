"""A thin kubectl runner: JSON in, OperatorError out, and a reason when kubectl cannot be used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from coldstart.ops.errors import OperatorError


class KubectlLike(Protocol):
    def get_json(self, *args: str) -> dict[str, Any]: ...


class Kubectl:
    def __init__(self, binary: str = "kubectl", context: str | None = None, timeout: float = 30.0):
        self.binary = binary
        self.context = context
        self.timeout = timeout

    def _base(self) -> list[str]:
        return [self.binary, *(["--context", self.context] if self.context else [])]

    def command(self, *args: str) -> list[str]:
        """The argv for ``kubectl [--context C] <args>`` (for callers that manage the process themselves)."""
        return [*self._base(), *args]

    def unavailable_reason(self) -> str | None:
        """None when kubectl and a kubeconfig with a current context are present, else why not."""
        if shutil.which(self.binary) is None:
            return f"{self.binary} not found on PATH"
        configs = [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p] or [Path.home() / ".kube" / "config"]
        if not any(p.is_file() for p in configs):
            return "no kubeconfig (run `aws eks update-kubeconfig --name <cluster>`)"
        probe = subprocess.run([*self._base(), "config", "current-context"], capture_output=True, text=True, timeout=self.timeout)
        if probe.returncode != 0:
            return "kubeconfig has no current context"
        return None

    def get_json(self, *args: str) -> dict[str, Any]:
        done = subprocess.run([*self._base(), *args, "-o", "json"], capture_output=True, text=True, timeout=self.timeout)
        if done.returncode != 0:
            raise OperatorError(f"kubectl {' '.join(args)} failed: {first_line(done.stderr)}")
        try:
            return json.loads(done.stdout)
        except ValueError:
            raise OperatorError(f"kubectl {' '.join(args)} -o json printed something that is not JSON") from None

    def run(self, args: Sequence[str]) -> int:
        """Run with output streamed to the terminal; returns the exit code."""
        return subprocess.run([*self._base(), *args]).returncode


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"
