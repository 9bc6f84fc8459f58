"""Bad input a new user tries (issue 12's list), in one table: each command runs as the user runs it
(a subprocess), and must end with ONE line on stderr naming the value and the fix, the table's exit
code (2 for usage, a bad configuration key included, 130 for Ctrl-C), no traceback,
and nothing of its own left running or in its temporary folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = str(REPO / "tests" / "coldstart" / "report" / "fixtures" / "warm")
SYNTH = ["-m", "k8s_charts.synth", "--offline", "--model-bucket", "example-bucket", "--region", "us-west-2"]
CDK_CONTEXT = json.loads((REPO / "cdk.json").read_text())["context"]
SYNTHESIZED = "synthesized:"  # a template of the session's synthesized app (tests/conftest.py synthesized_app)
WATCHDOG_S = 600  # only ends a hung run (the bug this table once caught: synth spinning on /proc); never reached when it works


@dataclass(frozen=True)
class Case:
    argv: list[str]  # after `python`; {tmp} is the test's temporary folder
    exit_code: int
    fragments: list[str]  # each must appear in the one line
    cdk_context: dict[str, object] | None = None  # run the way `cdk synth -c ...` runs app.py (cdk.json's "app")
    interrupt_after: str | None = None  # Ctrl-C (SIGINT to the process group, as a terminal sends it) once stdout shows this
    untouched: list[str] = field(default_factory=list)  # files the refused command must not change
    given: dict[str, str] = field(default_factory=dict)  # {tmp}/<name>: a repo file, or SYNTHESIZED + a stack's template


CASES = {
    # k8s_charts.synth: refused before node starts (it once hung at 90% CPU on /proc, tracebacked on a file).
    "synth-outdir-proc": Case([*SYNTH, "--outdir", "/proc/nope"], 2,
                              ["--outdir: invalid value '/proc/nope'", "kernel pseudo file system", "pass a writable folder"]),
    "synth-outdir-file": Case([*SYNTH, "--outdir", "/etc/passwd"], 2,
                              ["--outdir: invalid value '/etc/passwd'", "exists and is not a directory", "pass a writable folder"],
                              untouched=["/etc/passwd"]),
    # The operator CLI: its usage errors are one line too (not click's boxed usage text).
    "report-bundle-onto-a-file": Case(["-m", "coldstart", "report", FIXTURE, "--save-bundle", "/etc/passwd"], 2,
                                      ["--save-bundle: '/etc/passwd' exists and is not a directory", "name a new or empty folder"],
                                      untouched=["/etc/passwd"]),
    "report-chart-format": Case(["-m", "coldstart", "report", FIXTURE, "--chart", "{tmp}/start.gif"], 2,
                                ["--chart: '{tmp}/start.gif'", "written as .svg or .png"]),
    "bucket-uri": Case(["-m", "coldstart", "setup-model-s3", "--bucket", "s3://x"], 2,
                       ["--bucket: invalid value 's3://x'", "expected an S3 bucket name", "not a URI"]),
    # Context keys: `cdk synth` fails like the CLI, naming the key and the spelling that works.
    "cdk-unprefixed-key": Case(["app.py"], 2, ["gpuLimit: invalid context key gpuLimit='-4' without the coldstart: prefix",
                                               "use -c coldstart:gpuLimit="], cdk_context={"gpuLimit": "-4"}),
    "cdk-unknown-key": Case(["app.py"], 2, ["coldstart:gpuLimt: unknown key", "did you mean coldstart:gpuLimit?"],
                            cdk_context={"coldstart:gpuLimt": "4"}),
    "cli-unknown-key": Case(["-m", "coldstart", "-c", "gpuLimt=4", "plan"], 2,
                            ["coldstart:gpuLimt: unknown key", "did you mean coldstart:gpuLimit?"]),
    # rehearse --template: a template synthesized from another configuration would publish where the manifests don't read.
    "rehearse-template-drift": Case(["-m", "coldstart", "-c", "snapshotParameterName=/other/id", "rehearse", "--template", "{tmp}/pipeline.json"], 2,
                                    ["--template: '{tmp}/pipeline.json' was synthesized with coldstart:snapshotParameterName=",
                                     "this configuration has '/other/id'", "synthesize again (`make synth`)"],
                                    given={"pipeline.json": SYNTHESIZED + "VllmColdstartPipeline"}),
    "rehearse-template-not-a-template": Case(["-m", "coldstart", "rehearse", "--template", "{tmp}/cdk.json"], 2,
                                             ["--template: '{tmp}/cdk.json' is not a synthesized pipeline stack template",
                                              "no 'Resources' key", "pass cdk.out/VllmColdstartPipeline.template.json"],
                                             given={"cdk.json": "cdk.json"}),
    # Ctrl-C once the emulator runs the state machine (node, jsii's runtime, is running too).
    "rehearse-ctrl-c": Case(["-m", "coldstart", "rehearse"], 130,
                            ["interrupted (Ctrl-C)", "coldstart rehearse stopped", "run it again"], interrupt_after="started arn:aws:states:"),
}
MARKS = {"rehearse-ctrl-c": [pytest.mark.e2e, pytest.mark.synth, pytest.mark.slow]}


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of each of its threads, recursively), from /proc."""
    found: set[int] = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids = [int(p) for p in children.read_text().split()]
        except OSError:  # the thread ended while we looked
            continue
        for child in pids:
            found |= {child, *_descendants(child)}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (only its parent's wait is missing)


@pytest.mark.parametrize("name", [pytest.param(name, id=name, marks=MARKS.get(name, [])) for name in CASES])
def test_bad_input_gets_one_line_with_the_value_and_the_fix(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    for target, source in case.given.items():
        if source.startswith(SYNTHESIZED):
            (tmp_path / target).write_text(json.dumps(request.getfixturevalue("synthesized_app").template(source.removeprefix(SYNTHESIZED))))
        else:
            (tmp_path / target).write_bytes((REPO / source).read_bytes())
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    scratch = tmp_path / "tmp"  # the command's TMPDIR: what it leaves there, it left behind
    scratch.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CDK_OUTDIR": str(tmp_path / "cdk.out"), "TMPDIR": str(scratch)}
    if case.cdk_context is not None:
        env["CDK_CONTEXT_JSON"] = json.dumps({**CDK_CONTEXT, **case.cdk_context})  # what the CDK CLI passes: cdk.json + -c
    before = {path: Path(path).read_bytes() for path in case.untouched}

    # Given the command, started in its own session so Ctrl-C can go to its whole process group
    proc = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(WATCHDOG_S, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    children: set[int] = set()
    try:
        if case.interrupt_after:
            assert proc.stdout is not None
            seen = []
            for line in proc.stdout:  # wait for the line, not for a time
                seen.append(line)
                if case.interrupt_after in line:
                    break
            else:
                pytest.fail(f"never printed {case.interrupt_after!r}:\n{''.join(seen)}{proc.stderr.read() if proc.stderr else ''}")
            children = _descendants(proc.pid)
            assert children, "expected the jsii runtime (node) to be running by now"
            # When the user presses Ctrl-C
            os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate()
    finally:
        watchdog.cancel()

    # Then one line names the value and the fix, with the table's exit code and no traceback
    text = stderr.replace(str(tmp_path), "{tmp}")
    assert proc.returncode == case.exit_code, f"exit {proc.returncode}:\n{stdout}\n{stderr}"
    assert "Traceback" not in stdout + stderr, stderr
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    for fragment in case.fragments:
        assert fragment in lines[0], lines[0]
    # and nothing it started is still running or left in its temporary folder, nothing it refused to write was written
    assert not [pid for pid in children if _alive(pid)], f"left running: {children}"
    assert not list(scratch.iterdir())
    assert {path: Path(path).read_bytes() for path in case.untouched} == before


def test_the_offline_synth_summary_shows_the_apps_warnings(synthesized_app: Any) -> None:
    """`make demo` prints what the CDK CLI would: the open endpoint and the missing cluster admins."""
    from coldstart.synth_summary import warnings

    found = warnings(synthesized_app.outdir)
    assert any("clusterEndpointCidrs allows 0.0.0.0/0" in line for line in found), found
    assert any("clusterAdminRoleArns is empty" in line for line in found), found


def test_doctor_names_a_manifests_folder_outside_the_working_directory_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coldstart.ops.doctor import _shown

    monkeypatch.chdir(REPO)
    assert _shown(REPO / "dist") == "dist"
    assert _shown(tmp_path / "dist") == str(tmp_path / "dist")


def test_the_rehearsals_doctor_line_names_its_temporary_manifests_for_what_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rehearsal's manifests live in a temporary folder that is gone when the line is read."""
    from coldstart.ops.doctor import CheckResult, _shown
    from coldstart.rehearsal import TEMPORARY_DIST, _temporary_dist_named

    monkeypatch.chdir(REPO)
    dist = tmp_path / "coldstart-rehearsal-x" / "dist"
    check = CheckResult("generated EC2NodeClass uses it", "PASS", f"{_shown(dist)}/ EC2NodeClass gpu-bottlerocket -> snap-1")

    shown = _temporary_dist_named(check, dist).detail

    assert shown == f"{TEMPORARY_DIST}: EC2NodeClass gpu-bottlerocket -> snap-1"
    assert "dist/" not in shown and str(tmp_path) not in shown


def test_the_table_reads_a_real_report_bundle() -> None:
    """The report rows must fail on their option, not on a missing bundle: the fixture holds the one file the
    report requires (the pod), under the name it reads."""
    from coldstart.report.inputs import BUNDLE_FILES, load_bundle

    assert (Path(FIXTURE) / BUNDLE_FILES["pod"]).is_file()
    assert load_bundle(FIXTURE).pod["kind"] == "Pod"
