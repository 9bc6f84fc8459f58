"""Assertions on the synthesized PipelineStack template (the fixture also ran cdk-nag AwsSolutions on it)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from lambdas.snapshot_pipeline.core import errors
from lambdas.snapshot_pipeline.steps import pull_script
from settings import names
from stacks.pipeline.functions import HANDLER_PACKAGE, STEPS
from stacks.pipeline.state_machine import RETRY_POLICY
from tests.template_assertions import only_resource

pytestmark = pytest.mark.synth

MUTATING_EC2 = {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:StopInstances", "ec2:DeleteVolume", "ec2:DeleteSnapshot",
                "ec2:CreateSnapshot", "ec2:CreateTags", "ec2:EnableFastSnapshotRestores", "ec2:DisableFastSnapshotRestores"}
TAG_KEYS = {names.TAG_MANAGED_BY, "vllm-coldstart:pipeline"}


# the builder instance's role: the one EC2 may assume
BUILDER_ROLE = {"Properties": {"AssumeRolePolicyDocument": {
    "Statement": Match.array_with([Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})])}}}


@pytest.fixture(scope="module")
def template(pipeline_template: dict) -> Template:
    return Template.from_json(pipeline_template)


def statements(template: Template) -> list[dict[str, Any]]:
    """Every statement of the stack's inline policies, with Action and Resource always lists."""
    out = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            res = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            out.append({**statement, "Action": actions, "Resource": res})
    return out


def flat(value: Any) -> str:
    return json.dumps(value)


def is_wildcard(resource: Any) -> bool:
    return resource == "*" or flat(resource).endswith('/*"') or flat(resource).endswith('/*"]]}')


def test_mutating_ec2_actions_are_scoped_by_the_pipelines_tags(template: Template) -> None:
    """Per resource: a wildcard resource of a mutating statement needs the pipeline's tag condition,
    except public AMIs (image/*), which only RunInstances may use, and only to launch from."""
    checked = 0
    for statement in statements(template):
        mutating = MUTATING_EC2 & set(statement["Action"])
        if not mutating:
            continue
        condition = flat(statement.get("Condition", {}))
        for resource in statement["Resource"]:
            assert resource != "*", statement
            if not is_wildcard(resource):
                continue  # named resources: the builder's subnets and security group
            if flat(resource).endswith('image/*"]]}') or flat(resource).endswith('image/*"'):
                assert mutating == {"ec2:RunInstances"}, f"only RunInstances may use the public AMIs untagged: {statement}"
                continue
            if "ec2:CreateTags" in mutating:
                assert "ec2:CreateAction" in condition, statement
            else:
                for key in TAG_KEYS:
                    assert f"aws:RequestTag/{key}" in condition or f"aws:ResourceTag/{key}" in condition, (resource, statement)
            checked += 1
    assert checked >= 14


def test_run_instances_requires_request_tags_on_everything_it_creates(template: Template) -> None:
    run = [s for s in statements(template) if "ec2:RunInstances" in s["Action"] and "Condition" in s]
    (created,) = run
    assert {"instance/*", "volume/*", "network-interface/*"} <= {flat(r).split(":")[-1].rstrip('"]}') for r in created["Resource"]}
    assert set(created["Condition"]["StringEquals"]) == {f"aws:RequestTag/{k}" for k in TAG_KEYS}


def test_send_command_is_limited_to_the_pipeline_document_and_pipeline_instances(template: Template) -> None:
    send = [s for s in statements(template) if "ssm:SendCommand" in s["Action"]]
    assert len(send) == 2
    (document,) = [s for s in send if "document/" in flat(s["Resource"])]
    (arn,) = document["Resource"]
    # this account's document of that name (not an AWS-owned one such as AWS-RunShellScript), without conditions
    assert arn == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ssm:", {"Ref": "AWS::Region"}, ":",
                                     {"Ref": "AWS::AccountId"}, ":document/VllmColdstartPipeline-PullImages"]]}
    assert "Condition" not in document
    instance = next(s for s in send if "instance/*" in flat(s["Resource"]))
    assert set(instance["Condition"]["StringEquals"]) == {f"ssm:resourceTag/{k}" for k in TAG_KEYS}
    assert "AWS-RunShellScript" not in flat(template.to_json())  # anywhere in the template, any section


def test_the_pull_document_is_the_fixed_script_with_pattern_checked_data_parameters(template: Template) -> None:
    _, document = only_resource(template, "AWS::SSM::Document")
    props = document["Properties"]
    assert props["Name"] == "VllmColdstartPipeline-PullImages" and props["DocumentType"] == "Command"
    assert props["UpdateMethod"] == "NewVersion"  # a named document cannot be replaced
    content = props["Content"]
    assert content == pull_script.document_content()  # the single source of the pull script
    assert content["schemaVersion"] == "2.2"
    (step,) = content["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    for name in ("pulls", "platforms", "dataVolumeId", "adminWaitSeconds", "executionTimeout"):
        assert content["parameters"][name]["allowedPattern"], name
    # every placeholder in the script is a declared parameter; the data ones inside single quotes (the charset admits none)
    text = "\n".join(step["inputs"]["runCommand"])
    assert re.findall(r"\{\{[^}]*\}\}", text) == ["{{ adminWaitSeconds }}", "{{ adminWaitSeconds }}", "{{ pulls }}", "{{ platforms }}",
                                                   "{{ dataVolumeId }}"]
    assert "'{{ pulls }}' '{{ platforms }}' '{{ dataVolumeId }}'" in text
    assert re.fullmatch(content["parameters"]["adminWaitSeconds"]["allowedPattern"], "300")
    assert not re.fullmatch(content["parameters"]["dataVolumeId"]["allowedPattern"], "vol-0abc;id")
    # the host gets no script: the hand-over is to the ADMIN container's bash; host binaries only via `sheltie <binary>`
    assert "apiclient exec admin bash -c " in text and "sheltie bash" not in text and "sheltie sh " not in text
    # no shell-special character fits anywhere in a record or a platform list (SSM checks these at SendCommand)
    pulls, platforms = content["parameters"]["pulls"]["allowedPattern"], content["parameters"]["platforms"]["allowedPattern"]
    good_pulls, good_platforms = "r.example/a@sha256:" + "1" * 64 + "|1|r.example/a:v1 r.example/b:v2|0|-", "linux/amd64 linux/arm64"
    assert re.fullmatch(pulls, good_pulls) and re.fullmatch(platforms, good_platforms)
    for char in "'\"$`;\\()<>&*?[]{}!#~|= \t\n":
        for value, pattern in ((good_pulls, pulls), (good_platforms, platforms)):
            for at in (0, 5, len(value) // 2, len(value)):
                bad = value[:at] + char + value[at:]
                assert not re.fullmatch(pattern, bad), (pattern, bad)


def test_pass_role_only_for_the_builder_role_and_only_to_ec2(template: Template) -> None:
    (passrole,) = [s for s in statements(template) if "iam:PassRole" in s["Action"]]
    builder_role, _ = only_resource(template, "AWS::IAM::Role", BUILDER_ROLE)
    assert passrole["Resource"] == [{"Fn::GetAtt": [builder_role, "Arn"]}]
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_no_pipeline_function_can_get_an_ecr_credential(template: Template) -> None:
    assert not [s for s in statements(template) if "ecr:GetAuthorizationToken" in s["Action"]]


def test_builder_role_is_ssm_core_plus_ecr_read_and_its_security_group_has_no_ingress(template: Template) -> None:
    _, role = only_resource(template, "AWS::IAM::Role", BUILDER_ROLE)
    managed = flat(role["Properties"]["ManagedPolicyArns"])
    assert "AmazonSSMManagedInstanceCore" in managed and "AmazonEC2ContainerRegistryReadOnly" in managed
    only_resource(template, "AWS::EC2::SecurityGroup", {"Properties": {"SecurityGroupIngress": Match.absent()}})
    template.resource_count_is("AWS::EC2::SecurityGroup", 1)
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


def test_functions_share_one_asset_use_arm64_python312_and_the_powertools_layer(template: Template) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    assert {f["Properties"]["Handler"] for f in functions.values()} == {f"{HANDLER_PACKAGE}.{s}.handler" for s in STEPS}
    assert len({flat(f["Properties"]["Code"]) for f in functions.values()}) == 1
    template.all_resources_properties("AWS::Lambda::Function", {
        "Runtime": "python3.12", "Architectures": ["arm64"],
        "Environment": {"Variables": {names.ENV_PIPELINE_CONFIG: Match.serialized_json(
            Match.object_like({"snapshotParameterName": names.DEFAULT_SNAPSHOT_PARAMETER}))}}})
    for fn in functions.values():
        (layer,) = fn["Properties"]["Layers"]
        assert "${AWS::Region}" in layer["Fn::Sub"] and "AWSLambdaPowertoolsPythonV3-python312-arm64" in layer["Fn::Sub"]


def test_waits_read_their_seconds_from_the_plan_and_tasks_share_one_retry_policy(pipeline_definition: dict) -> None:
    states = pipeline_definition["States"]
    waits = [s for s in states.values() if s["Type"] == "Wait"]
    assert waits and all("SecondsPath" in w and "Seconds" not in w for w in waits)
    expected = [{"ErrorEquals": list(r.errors), "IntervalSeconds": r.interval_seconds, "MaxAttempts": r.max_attempts,
                 "BackoffRate": r.backoff_rate, "MaxDelaySeconds": r.max_delay_seconds, "JitterStrategy": "FULL"} for r in RETRY_POLICY]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert len(tasks) == len(STEPS) - 1  # every step but the janitor
    for name, task in tasks.items():
        assert task["Retry"] == expected, name
    # Everything after the launch is caught into cleanup; the first state and the gate fail directly
    uncaught = {n for n, t in tasks.items() if "Catch" not in t}
    assert uncaught == {"ResolveInput", "CheckGate"}
    for name in ("LaunchBuilder", "CheckBuilderOnline", "StartPull", "CheckPull", "VerifyImages", "StopBuilder", "CreateSnapshot",
                 "CheckSnapshot", "Publish"):
        assert tasks[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "StartCleanupPolls"}], name
    assert pipeline_definition["StartAt"] == "ResolveInput"


# loop name -> (its Choice state, the plan's limit, the named error the limit ends in)
POLL_LOOPS = {
    "Gate": ("GateDecision", "$.plan.gateMaxPolls", errors.PIPELINE_BUSY_TIMEOUT),
    "Online": ("OnlineDone?", "$.plan.maxPolls", errors.BUILDER_ONLINE_TIMEOUT),
    "Pull": ("PullDone?", "$.plan.commandMaxPolls", errors.PULL_TIMEOUT),
    "Stop": ("StopDone?", "$.plan.maxPolls", errors.STOP_TIMEOUT),
    "Snapshot": ("SnapshotDone?", "$.plan.maxPolls", errors.SNAPSHOT_TIMEOUT),
    "Cleanup": ("CleanupDone?", "$.plan.maxPolls", errors.CLEANUP_TIMEOUT),
}


def _count_limit_targets(choice: dict[str, Any], limit: str) -> list[str]:
    """Next states of the choice's rules that test ``$.poll.count >= limit`` (alone or inside an And)."""
    def bounded(rule: dict[str, Any]) -> bool:
        if rule.get("Variable") == "$.poll.count" and rule.get("NumericGreaterThanEqualsPath") == limit:
            return True
        return any(bounded(r) for r in rule.get("And", []))

    return [rule["Next"] for rule in choice["Choices"] if bounded(rule)]


def _named_error(states: dict[str, Any], name: str) -> str | None:
    """The error a timeout state raises: a Fail's Error, or a Pass recording $.error (then Cleanup, then BuildFailed)."""
    state = states[name]
    if state["Type"] == "Fail":
        return state.get("Error")
    if state["Type"] == "Pass" and state.get("ResultPath") == "$.error":
        return state["Parameters"]["Error"]
    return None


def test_polls_are_bounded_with_named_timeouts(pipeline_definition: dict) -> None:
    states = pipeline_definition["States"]
    # Every loop of the definition (each has a Count<name>Poll state) is in POLL_LOOPS: a new loop must be bounded here too.
    loops = {name[len("Count"):-len("Poll")] for name in states if name.startswith("Count") and name.endswith("Poll")}
    assert loops == set(POLL_LOOPS)
    for name, (choice, limit, error) in POLL_LOOPS.items():
        targets = _count_limit_targets(states[choice], limit)
        assert len(targets) == 1, (name, states[choice])
        assert _named_error(states, targets[0]) == error, (name, targets[0])


def test_state_machine_is_standard_logged_traced_and_bounded(template: Template, pipeline_definition: dict) -> None:
    _, machine = only_resource(template, "AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD" and props["TracingConfiguration"] == {"Enabled": True}
    # ERROR without execution data: failures are logged, step inputs/outputs (command output) are not kept for months
    assert props["LoggingConfiguration"]["Level"] == "ERROR"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert pipeline_definition["TimeoutSeconds"] > 0


def test_builder_needs_no_describe_instances_because_its_user_data_sets_the_instance_id_hostname_source(template: Template) -> None:
    """Bottlerocket's pluto calls ec2:DescribeInstances at boot for the default hostname source
    (bottlerocket-core-kit sources/api/pluto/src/main.rs, generate_node_name); the builder's user data
    chooses instance-id, so its role (SSM core + ECR read, no inline policy) suffices."""
    import tomllib

    from lambdas.snapshot_pipeline.steps import builder

    settings = tomllib.loads(builder.USER_DATA)["settings"]
    assert settings["kubernetes"]["hostname-override-source"] == "instance-id"
    assert settings["host-containers"]["admin"]["enabled"] is True
    roles = template.find_resources("AWS::IAM::Role", {"Properties": {"AssumeRolePolicyDocument": {
        "Statement": [Match.object_like({"Principal": {"Service": "ec2.amazonaws.com"}})]}}})
    ((role_id, role),) = roles.items()
    assert "Policies" not in role["Properties"]
    template.resource_properties_count_is("AWS::IAM::Policy", {"Roles": Match.array_with([{"Ref": role_id}])}, 0)


def test_janitor_failures_land_in_an_encrypted_alarmed_dead_letter_queue(template: Template) -> None:
    queue_id = Capture()
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600})
    # an event EventBridge could not deliver to the janitor
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({"source": ["aws.states"]}),
        "Targets": [Match.object_like({"DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}})]})
    # an invocation that still failed after Lambda's async retries
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id.as_string(), "Arn"]}}}, "MaximumRetryAttempts": 2})
    # and a message there pages the operator
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible", "Dimensions": [{"Name": "QueueName", "Value": {
            "Fn::GetAtt": [queue_id.as_string(), "QueueName"]}}]})
    template.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def test_failure_alarms_notify_an_encrypted_topic(template: Template) -> None:
    metrics = {a["Properties"]["MetricName"] for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "Errors"} <= metrics
    topic_id, _ = only_resource(template, "AWS::SNS::Topic", {"Properties": {"KmsMasterKeyId": Match.any_value()}})
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.all_resources_properties("AWS::CloudWatch::Alarm", {"AlarmActions": Match.exact([{"Ref": topic_id}])})


def test_ecr_push_rule_matches_successful_pushes_of_the_configured_repository_and_tag(template: Template, pipeline_config: Any) -> None:
    _, ecr_rule = only_resource(template, "AWS::Events::Rule", {"Properties": {"EventPattern": {"source": ["aws.ecr"]}}})
    assert ecr_rule["Properties"]["EventPattern"] == {
        "source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
        "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"], "repository-name": [pipeline_config.vllmRepository],
                   "image-tag": [pipeline_config.ecrTriggerTagPattern]},
    }
    (target,) = ecr_rule["Properties"]["Targets"]
    assert '"imageDigest":<detail-image-digest>' in target["InputTransformer"]["InputTemplate"].replace(" ", "")


def test_wildcard_tag_patterns_become_eventbridge_wildcard_filters() -> None:
    from aws_cdk import Stack

    from stacks.pipeline.triggers import tag_filter

    assert Stack().resolve(tag_filter("v0.*")) == [{"wildcard": "v0.*"}]
    assert tag_filter("v0.11.0") == ["v0.11.0"]


def test_schedule_and_janitor_rules(template: Template, pipeline_config: Any) -> None:
    scheduled = template.find_resources("AWS::Events::Rule", {"Properties": {"ScheduleExpression": Match.any_value()}})
    assert [r["Properties"]["ScheduleExpression"] for r in scheduled.values()] == [pipeline_config.scheduleExpression]
    _, janitor = only_resource(template, "AWS::Events::Rule", {"Properties": {"EventPattern": {"source": ["aws.states"]}}})
    pattern = janitor["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert "stateMachine:VllmColdstartPipeline-snapshot" in flat(pattern["detail"]["stateMachineArn"])


def test_stack_outputs_the_state_machine_arn(template: Template) -> None:
    assert template.find_outputs(names.OUTPUT_STATE_MACHINE_ARN)
