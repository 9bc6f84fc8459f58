"""Every AWS call each Lambda function makes is allowed by THAT function's role in the synthesized template.

moto does not enforce IAM, so the e2e runs cannot see a missing permission (review finding 1:
retention read the metadata parameter's history without ``ssm:GetParameterHistory`` on it). Here the
real definition runs the real handlers in-process (``coldstart.emulator``); ``AwsGaps.api_calls``
records each call with the function whose handler made it (set by the in-process invoke shim).
Each call maps to its IAM action ``<prefix>:<ApiName>``, which must be allowed by an Allow
statement of the function's role policies (action wildcards via fnmatch; conditions ignored).
SSM parameter calls, SendCommand (document and instances) and Step Functions calls must also match a
statement's resource ARN.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from typing import Any

import pytest

from coldstart import emulator
from settings import names
from tests.lambdas.conftest import ACCOUNT, REGION, VLLM_TAG

pytestmark = [pytest.mark.e2e, pytest.mark.synth]

# boto3 service name -> IAM service prefix (explicit: an unknown service fails loudly instead of guessing)
IAM_PREFIX = {"ec2": "ec2", "ssm": "ssm", "ecr": "ecr", "stepfunctions": "states"}
METADATA = names.metadata_parameter_name(names.DEFAULT_SNAPSHOT_PARAMETER)
PUSH = {"trigger": "ecr", "repositoryName": "vllm/vllm-openai", "imageTag": VLLM_TAG}


# --- reading the template ---------------------------------------------------------------------------------------
def _resolve(node: Any) -> str | None:
    """A statement's Resource as an fnmatch pattern, its intrinsics resolved by the emulator for the test account;
    None if it names another resource, which no SSM or Step Functions call of ours can match (a pattern that
    matches nothing, never ``*``: a grant on some other resource must not pass for ours)."""
    try:
        value = emulator.resolve_intrinsics(node, region=REGION, account=ACCOUNT, attributes={})
    except emulator.EmulatorError:  # Ref / Fn::GetAtt of a resource (the state machine, a log group, a function)
        return None
    # resolve_intrinsics leaves in place what it does not know: Fn::ImportValue (the builder's subnet grants) or any
    # other intrinsic, at the top (a dict) or inside Fn::Join (rendered "{'Fn::..."); Fn::Sub of a resource keeps "${".
    if not isinstance(value, str) or "{'Fn::" in value or "${" in value:
        return None
    return value


def role_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Function logical ID -> the Allow statements of its role (attached AWS::IAM::Policy and inline policies)."""
    resources = template["Resources"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Policy":
            for role in resource["Properties"].get("Roles", []):
                by_role.setdefault(role["Ref"], []).extend(resource["Properties"]["PolicyDocument"]["Statement"])
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                by_role.setdefault(logical_id, []).extend(policy["PolicyDocument"]["Statement"])
    out = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
            out[logical_id] = [s for s in by_role.get(role_id, []) if s.get("Effect") == "Allow"]
    return out


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- mapping calls to IAM ---------------------------------------------------------------------------------------------
def iam_action(call: emulator.ApiCall) -> str:
    assert call.service in IAM_PREFIX, f"{call.service}: add its IAM prefix to IAM_PREFIX"
    return f"{IAM_PREFIX[call.service]}:{call.api_name}"


def parameter_arn(name: str) -> str:
    # Public parameters (/aws/service/...) are AWS-owned: their ARN has no account.
    account = "" if name.startswith("/aws/") else ACCOUNT
    return f"arn:aws:ssm:{REGION}:{account}:parameter/{name.lstrip('/')}"


def call_resources(call: emulator.ApiCall) -> list[str] | None:
    """The ARNs a call acts on, for the calls checked by resource; None: check the action only."""
    if call.service == "ssm" and "Parameter" in call.api_name:
        names_ = _listed(call.kwargs.get("Name", call.kwargs.get("Names", [])))
        return [parameter_arn(n) for n in names_]
    if call.service == "stepfunctions":
        return [call.kwargs[key] for key in ("stateMachineArn", "executionArn") if key in call.kwargs]
    if call.service == "ssm" and call.api_name == "SendCommand":
        # SendCommand is authorized on the document AND on each target instance; AWS-owned documents have no account.
        document = call.kwargs["DocumentName"]
        owner = "" if document.startswith(("AWS-", "Amazon")) else ACCOUNT
        return [f"arn:aws:ssm:{REGION}:{owner}:document/{document}",
                *(f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{i}" for i in call.kwargs["InstanceIds"])]
    return None


def denied(template: dict[str, Any], calls: list[emulator.ApiCall], function_ids: dict[str, str]) -> list[str]:
    """Each (function, action, resource) a recorded call needs that no statement of its role allows."""
    statements = role_statements(template)
    problems = set()
    for call in calls:
        logical_id = function_ids[call.function]  # type: ignore[index]
        action = iam_action(call).lower()
        allowing = [s for s in statements[logical_id]
                    if any(fnmatch.fnmatchcase(action, pattern.lower()) for pattern in _listed(s["Action"]))]
        if not allowing:
            problems.add(f"{logical_id}: {iam_action(call)} not granted")
            continue
        for arn in call_resources(call) or []:
            patterns = [_resolve(r) for s in allowing for r in _listed(s["Resource"])]
            if not any(p is not None and fnmatch.fnmatchcase(arn, p) for p in patterns):
                problems.add(f"{logical_id}: {iam_action(call)} on {arn} not granted (resources: {patterns})")
    return sorted(problems)


def function_ids(template: dict[str, Any]) -> dict[str, str]:
    """Deployed function name -> logical ID (LocalPipeline names each function by its logical ID, cut to 64)."""
    return {logical_id[:64]: logical_id for logical_id in emulator.template_functions(template)}


def handler_calls(world: Any) -> list[emulator.ApiCall]:
    calls = [c for c in world.gaps.api_calls if c.function is not None]  # not the test's own setup calls
    assert calls, "no handler calls were recorded"
    return calls


def functions_called(template: dict[str, Any], calls: list[emulator.ApiCall]) -> set[str]:
    handlers = {logical_id: spec.handler.split(".")[-2] for logical_id, spec in emulator.template_functions(template).items()}
    ids = function_ids(template)
    return {handlers[ids[c.function]] for c in calls}  # type: ignore[index]


def invoke_janitor(template: dict[str, Any], pipeline: emulator.LocalPipeline, execution_arn: str) -> None:
    """Invoke the janitor function the way EventBridge would (it is not part of the state machine)."""
    (logical_id,) = [k for k, spec in emulator.template_functions(template).items() if spec.handler.endswith(".janitor.handler")]
    lam = pipeline._client("lambda")
    response = lam.invoke(FunctionName=logical_id[:64], Payload=json.dumps(
        {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
         "detail": {"executionArn": execution_arn, "stateMachineArn": pipeline.state_machine_arn, "status": "FAILED"}}))
    assert "FunctionError" not in response, response["Payload"].read()


# --- the tests --------------------------------------------------------------------------------------------------------
def test_every_call_on_the_success_paths_is_granted_to_the_calling_function(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template, fastSnapshotRestoreAzs=["us-west-2a"])
    world.faults.ssm_ping = ["ConnectionLost", "Online"]
    world.faults.command_status = ["InProgress", "Success"]
    first = pipeline.run({})  # publish + FSR enable + retention
    assert first.status == "SUCCEEDED", first.cause
    second = pipeline.run({"force": True})  # publish over a previous ID: FSR disable, retention with a rollback target
    assert second.status == "SUCCEEDED", second.cause
    # force: the newer run cannot end "already published" before the older one looks, so the outcome does
    # not depend on which gate runs first (the older's gate looks only once the newer has started)
    push = {**PUSH, "imageDigest": world.digest, "force": True}
    older, newer = world.start_back_to_back(pipeline, push)
    assert "Superseded" in pipeline.states_entered(pipeline.wait(older).arn)
    assert pipeline.wait(newer).status == "SUCCEEDED"

    calls = handler_calls(world)
    assert denied(pipeline_template, calls, function_ids(pipeline_template)) == []
    # the runs above reached every function of the state machine
    handlers = {spec.handler.split(".")[-2] for spec in emulator.template_functions(pipeline_template).values()}
    assert functions_called(pipeline_template, calls) == handlers - {"janitor"}
    assert {iam_action(c) for c in calls} >= {"ssm:GetParameterHistory", "states:DescribeExecution", "ec2:DisableFastSnapshotRestores"}


def test_every_call_on_the_failure_paths_is_granted_to_the_calling_function(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    world.publish_previous()
    world.faults.ssm_ping = ["ConnectionLost"]  # never online: cleanup, then BuildFailed
    lost = pipeline.run({})
    assert lost.status == "FAILED"
    world.faults.ssm_ping = ["Online"]
    world.faults.throttle_when = lambda op, kw: op == "ssm.put_parameter" and kw["Name"] == names.DEFAULT_SNAPSHOT_PARAMETER
    throttled = pipeline.run({})  # metadata written, ID write throttled: publish puts the metadata back
    assert throttled.status == "FAILED"
    invoke_janitor(pipeline_template, pipeline, throttled.arn)

    calls = handler_calls(world)
    assert denied(pipeline_template, calls, function_ids(pipeline_template)) == []
    assert {"publish", "cleanup", "janitor"} <= functions_called(pipeline_template, calls)
    assert "ssm:DeleteParameter" in {iam_action(c) for c in calls}  # the restore of a first metadata write


def test_the_check_catches_a_missing_grant_and_a_wrong_parameter(pipeline_template: dict) -> None:
    """The check itself: retention's read of the metadata history is denied once its statement is gone
    (the role as it was before the fix), and a parameter outside the grants is denied by resource."""
    ids = function_ids(pipeline_template)
    by_handler = {spec.handler.split(".")[-2]: k for k, spec in emulator.template_functions(pipeline_template).items()}
    retention, gate = by_handler["retention"][:64], by_handler["gate"][:64]
    history = emulator.ApiCall(retention, "ssm", "get_parameter_history", "GetParameterHistory", {"Name": METADATA})
    assert denied(pipeline_template, [history], ids) == []

    before_fix = copy.deepcopy(pipeline_template)
    for resource in before_fix["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [s for s in statements if not (s["Action"] == "ssm:GetParameterHistory" and "metadata" in json.dumps(s["Resource"]))]
    (problem,) = denied(before_fix, [history], ids)
    assert "GetParameterHistory on arn:aws:ssm:us-west-2:123456789012:parameter/vllm-coldstart/snapshot-id/metadata" in problem

    other = emulator.ApiCall(gate, "ssm", "get_parameter", "GetParameter", {"Name": "/some/other/parameter"})
    (problem,) = denied(pipeline_template, [other], ids)
    assert "parameter/some/other/parameter not granted" in problem
    put = emulator.ApiCall(gate, "ssm", "put_parameter", "PutParameter", {"Name": names.DEFAULT_SNAPSHOT_PARAMETER})
    assert denied(pipeline_template, [put], ids) == [f"{by_handler['gate']}: ssm:PutParameter not granted"]


def test_the_pull_function_may_send_only_the_pipeline_document(pipeline_template: dict) -> None:
    """The start_pull role runs the pipeline's fixed-script document; AWS-RunShellScript (any root shell) is denied."""
    ids = function_ids(pipeline_template)
    by_handler = {spec.handler.split(".")[-2]: k for k, spec in emulator.template_functions(pipeline_template).items()}
    start_pull = by_handler["start_pull"]

    def send(document: str) -> emulator.ApiCall:
        return emulator.ApiCall(start_pull[:64], "ssm", "send_command", "SendCommand",
                                {"DocumentName": document, "InstanceIds": ["i-0123456789abcdef0"]})

    assert denied(pipeline_template, [send(names.pull_document_name("VllmColdstartPipeline"))], ids) == []
    (problem,) = denied(pipeline_template, [send("AWS-RunShellScript")], ids)
    assert f"SendCommand on arn:aws:ssm:{REGION}::document/AWS-RunShellScript not granted" in problem
