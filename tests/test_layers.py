"""The house's layers point one way. From the bottom: ``settings`` (config, names, versions) <
``lambdas`` and ``k8s_charts`` (runtime code and charts) < ``stacks`` < ``app.py`` < ``coldstart`` (the
operator CLI, on top). A module may import its own package and the layers below it, never above.

``settings`` also ships inside the Lambda asset, so beside itself it may import only the standard
library and botocore (the runtime has it). ``apps/chat`` is its own container image: it imports no
project package. Read from the source with ``ast``, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = {"settings", "lambdas", "k8s_charts", "stacks", "app", "coldstart", "apps"}
ALLOWED: dict[str, set[str]] = {
    "settings": {"settings"},
    "lambdas": {"settings", "lambdas"},
    "k8s_charts": {"settings", "k8s_charts"},
    "stacks": {"settings", "lambdas", "k8s_charts", "stacks"},
    "app": {"settings", "lambdas", "k8s_charts", "stacks"},
    "coldstart": PROJECT - {"apps"},
    "apps": {"apps"},
}
SETTINGS_THIRD_PARTY = {"botocore"}


def _modules(package: str) -> list[Path]:
    if package == "app":
        return [REPO / "app.py"]
    return sorted(p for p in (REPO / package).rglob("*.py") if "imports" not in p.relative_to(REPO / package).parts[:1])


def _imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in the file (relative imports stay in the package)."""
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_runs_up_the_layers(package: str) -> None:
    modules = _modules(package)
    assert modules, f"{package}: no modules found"
    upward = {str(p.relative_to(REPO)): sorted((_imports(p) & PROJECT) - ALLOWED[package]) for p in modules}
    assert {k: v for k, v in upward.items() if v} == {}


def test_settings_needs_only_the_standard_library_and_botocore() -> None:
    foreign = {str(p.relative_to(REPO)): sorted(t for t in _imports(p) - PROJECT - SETTINGS_THIRD_PARTY
                                                if t not in sys.stdlib_module_names and t != "__future__")
               for p in _modules("settings")}
    assert {k: v for k, v in foreign.items() if v} == {}


def test_the_checker_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from coldstart.cli import app\n    import stacks.nag\n")
    assert _imports(probe) & PROJECT == {"coldstart", "stacks"}
