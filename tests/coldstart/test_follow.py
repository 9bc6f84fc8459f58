"""create-snapshot: start or attach, follow state by state, snapshot ID or failing state at the end.

Executions run in moto's Step Functions interpreter with Pass/Wait/Fail states (no Lambdas); the
retry-then-catch trace is replayed from a scripted history through the same API calls.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from coldstart.ops import follow as follow_ops
from settings import names
from tests.coldstart.conftest import REGION, create_stack_with_outputs

SNAP = "snap-0123456789abcdef0"


def state_machine(definition: dict, name: str = "pipeline") -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]


SUCCEEDS = {
    "StartAt": "ResolveImages",
    "States": {
        "ResolveImages": {"Type": "Pass", "Result": {"images": ["vllm"]}, "ResultPath": "$.plan", "Next": "WaitForBuilder"},
        "WaitForBuilder": {"Type": "Wait", "Seconds": 1, "Next": "Publish"},
        "Publish": {"Type": "Pass", "Result": {"snapshotId": SNAP}, "ResultPath": "$.published", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}
FAILS = {
    "StartAt": "ResolveImages",
    "States": {
        "ResolveImages": {"Type": "Pass", "Next": "BuildFailed"},
        "BuildFailed": {"Type": "Fail", "Error": "ImagePullFailed", "Cause": "manifest unknown: vllm/vllm-openai:v9"},
    },
}


def test_follow_prints_the_outcome_and_the_snapshot_id(aws, cli):
    arn = state_machine(SUCCEEDS)

    result = cli("create-snapshot", "--state-machine-arn", arn, "--poll-seconds", "0.2")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("started arn:aws:states:")
    assert not any("✓" in line for line in lines)  # Pass/Wait/Succeed are plumbing: only with --verbose
    assert lines[-2].endswith("execution succeeded")
    assert lines[-1] == f"snapshot: {SNAP}"


def test_verbose_shows_every_state_with_its_elapsed_time(aws, cli):
    arn = state_machine(SUCCEEDS)

    result = cli("create-snapshot", "--state-machine-arn", arn, "--poll-seconds", "0.2", "--verbose")

    assert result.exit_code == 0, result.output
    exits = {line.split("✓ ")[1].split()[0]: line for line in result.stdout.splitlines() if "✓" in line}
    assert list(exits) == ["ResolveImages", "WaitForBuilder", "Publish", "Done"]
    assert float(exits["WaitForBuilder"].rsplit(" ", 1)[1].rstrip("s")) >= 0.9  # event timestamps: the 1-second Wait


def test_failed_build_names_the_state_error_and_cause_and_exits_1(aws, cli):
    arn = state_machine(FAILS)

    result = cli("create-snapshot", "--state-machine-arn", arn, "--poll-seconds", "0.2")

    assert result.exit_code == 1
    assert result.stderr.strip() == "error: build FAILED in state BuildFailed: ImagePullFailed: manifest unknown: vllm/vllm-openai:v9"
    assert "Traceback" not in result.output


def test_attaches_to_the_running_execution_instead_of_starting_another(aws, cli, monkeypatch):
    arn = state_machine({"StartAt": "LongBuild", "States": {"LongBuild": {"Type": "Wait", "Seconds": 600, "End": True}}})
    sfn = boto3.client("stepfunctions", region_name=REGION)
    running = sfn.start_execution(stateMachineArn=arn, name="scheduled-build", input="{}")["executionArn"]
    real_lookup = follow_ops.running_execution

    def lookup_then_abort(client, state_machine_arn):
        # Found while RUNNING; aborted right after so the follow ends without waiting 600 s.
        found = real_lookup(client, state_machine_arn)
        sfn.stop_execution(executionArn=running, error="Test", cause="stopped by the test")
        return found

    monkeypatch.setattr(follow_ops, "running_execution", lookup_then_abort)

    result = cli("create-snapshot", "--state-machine-arn", arn, "--poll-seconds", "0.2", "--force")

    assert result.stdout.splitlines()[0] == f"attached to {running}"
    assert "--force not applied" in result.stderr
    assert [e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]] == [running]
    assert result.exit_code == 1 and "build ABORTED" in result.stderr


def test_input_and_force_are_passed_to_a_new_execution(aws, cli):
    arn = state_machine(SUCCEEDS)
    create_stack_with_outputs(names.PIPELINE_STACK, {names.OUTPUT_STATE_MACHINE_ARN: arn})

    result = cli("create-snapshot", "--input", '{"trigger": "manual"}', "--force", "--poll-seconds", "0.2")

    assert result.exit_code == 0, result.output
    sfn = boto3.client("stepfunctions", region_name=REGION)
    execution = sfn.list_executions(stateMachineArn=arn)["executions"][0]["executionArn"]
    assert json.loads(sfn.describe_execution(executionArn=execution)["input"]) == {"trigger": "manual", "force": True}


@pytest.mark.parametrize(("raw", "message"), [("{nope", "not valid JSON"), ("[1]", "expected a JSON object")])
def test_bad_input_json_is_refused_before_starting(aws, cli, raw, message):
    arn = state_machine(SUCCEEDS)

    result = cli("create-snapshot", "--state-machine-arn", arn, "--input", raw)

    assert result.exit_code == 1 and message in result.stderr
    assert boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=arn)["executions"] == []


def test_missing_pipeline_stack_is_one_line_error(aws, cli):
    result = cli("create-snapshot")

    assert result.exit_code == 1
    assert f"stack {names.PIPELINE_STACK} not found" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- a retried, then caught task failure (scripted history through the real API shape) ------------


class ScriptedSfn:
    """describe_execution / get_execution_history over a history revealed a few events per poll."""

    def __init__(self, events: list[dict], final: dict, per_poll: int = 3):
        self.events, self.final, self.per_poll, self.polls = events, final, per_poll, 0

    def describe_execution(self, executionArn: str) -> dict:
        self.polls += 1
        done = self.polls * self.per_poll >= len(self.events)
        return self.final if done else {"status": "RUNNING"}

    def get_execution_history(self, executionArn: str, maxResults: int, nextToken: str | None = None) -> dict:
        visible = self.events[: self.polls * self.per_poll]
        start = int(nextToken or 0)
        page = visible[start : start + 2]  # small pages: the follower must paginate
        more = start + 2 < len(visible)
        return {"events": page, **({"nextToken": str(start + 2)} if more else {})}


def _events() -> list[dict]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    raw = [
        ("ExecutionStarted", 0, {}),
        *(event for poll in range(3) for event in (
            ("TaskStateEntered", 10 * poll, {"stateEnteredEventDetails": {"name": "CheckOnline"}}),
            ("TaskStateExited", 10 * poll + 1, {"stateExitedEventDetails": {"name": "CheckOnline"}}),
            ("ChoiceStateEntered", 10 * poll + 1, {"stateEnteredEventDetails": {"name": "Online?"}}),
            ("ChoiceStateExited", 10 * poll + 1, {"stateExitedEventDetails": {"name": "Online?"}}),
            *([("WaitStateEntered", 10 * poll + 1, {"stateEnteredEventDetails": {"name": "WaitOnline"}}),
               ("WaitStateExited", 10 * poll + 10, {"stateExitedEventDetails": {"name": "WaitOnline"}})] if poll < 2 else []),
        )),
        ("TaskStateEntered", 21, {"stateEnteredEventDetails": {"name": "PullImages"}}),
        ("LambdaFunctionFailed", 60, {"lambdaFunctionFailedEventDetails": {
            "error": "PullTimeout", "cause": json.dumps({"errorMessage": "pull did not finish in 3600s", "errorType": "PullTimeout"})}}),
        ("TaskStateExited", 61, {"stateExitedEventDetails": {"name": "PullImages"}}),
        ("TaskStateEntered", 61, {"stateEnteredEventDetails": {"name": "Cleanup"}}),
        ("TaskStateExited", 65, {"stateExitedEventDetails": {"name": "Cleanup"}}),
        ("FailStateEntered", 65, {"stateEnteredEventDetails": {"name": "BuildFailed"}}),
        ("ExecutionFailed", 65, {"executionFailedEventDetails": {"error": "BuildFailed", "cause": "see PullImages"}}),
    ]
    return [{"id": i + 1, "type": t, "timestamp": t0 + timedelta(seconds=s), **d} for i, (t, s, d) in enumerate(raw)]


def test_caught_task_failure_reports_the_task_state_not_the_fail_state():
    lines: list[follow_ops.TraceLine] = []
    sleeps: list[float] = []
    sfn = ScriptedSfn(_events(), {"status": "FAILED", "error": "BuildFailed", "cause": "see PullImages"})

    result = follow_ops.follow(sfn, "arn:exec", lines.append, poll_seconds=7, sleep=sleeps.append)

    assert (result.status, result.failed_state, result.error, result.cause) == ("FAILED", "PullImages", "PullTimeout", "pull did not finish in 3600s")
    shown = [(line.kind, line.text, line.elapsed) for line in lines if not line.quiet and line.kind in ("exit", "error")]
    assert shown == [
        ("exit", "CheckOnline", 1.0),
        ("exit", "CheckOnline x3", 21.0),  # the polled loop, once, when it ends: first entry -> last exit
        ("error", "PullImages: PullTimeout: pull did not finish in 3600s", None),
        ("exit", "PullImages", 40.0),
        ("exit", "Cleanup", 4.0),
    ]
    # Each event is traced exactly once although every poll re-reads the history in pages of two.
    assert [line.text for line in lines if line.kind == "enter"] == ["CheckOnline", "Online?", "WaitOnline"] * 2 + [
        "CheckOnline", "Online?", "PullImages", "Cleanup", "BuildFailed"]
    assert sleeps and set(sleeps) == {7}  # polled until terminal, at the requested interval


def test_snapshot_id_is_found_anywhere_in_the_output():
    assert follow_ops.find_snapshot_id(json.dumps({"publish": {"result": {"snapshotId": SNAP}}})) == SNAP
    assert follow_ops.find_snapshot_id(json.dumps({"snapshotId": "not-a-snapshot"})) is None
    assert follow_ops.find_snapshot_id(None) is None


def test_an_up_to_date_build_says_so_and_prints_the_published_id(aws, cli):
    arn = state_machine({"StartAt": "CheckGate", "States": {
        "CheckGate": {"Type": "Pass", "Result": {"decision": "published", "snapshotId": SNAP}, "ResultPath": "$.gate",
                      "Next": "AlreadyPublished"},
        "AlreadyPublished": {"Type": "Succeed"}}})

    result = cli("create-snapshot", "--state-machine-arn", arn, "--poll-seconds", "0.2")

    assert result.exit_code == 0, result.output
    assert "already published" in result.stdout and result.stdout.splitlines()[-1] == f"snapshot: {SNAP}"


def test_a_superseded_run_hands_over_to_the_newer_execution(aws, cli):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    newer = sfn.start_execution(stateMachineArn=state_machine(SUCCEEDS, name="newer"), name="push-2", input="{}")["executionArn"]
    older = state_machine({"StartAt": "CheckGate", "States": {
        "CheckGate": {"Type": "Pass", "Result": {"decision": "superseded", "by": newer}, "ResultPath": "$.gate", "Next": "Superseded"},
        "Superseded": {"Type": "Succeed"}}}, name="older")

    result = cli("create-snapshot", "--state-machine-arn", older, "--poll-seconds", "0.2")

    assert result.exit_code == 0, result.output
    assert f"superseded; following {newer}" in result.stdout
    assert result.stdout.splitlines()[-1] == f"snapshot: {SNAP}"
