"""Each step's plain functions (and the janitor handler) against moto, plus the pull script run under bash."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from coldstart import emulator
from lambdas.snapshot_pipeline.build_plan import BuildPlan
from lambdas.snapshot_pipeline.core import tags
from lambdas.snapshot_pipeline.core.errors import (
    ImageVerificationFailed,
    InputValidationError,
    InsufficientCapacity,
    PullCommandFailed,
    SnapshotFailed,
)
from lambdas.snapshot_pipeline.handlers import janitor
from lambdas.snapshot_pipeline.steps import builder, cleanup, fsr, gate, publish, pull, pull_script, retention, snapshot
from lambdas.snapshot_pipeline.steps.resolve_input import resolve_input
from settings import names
from tests.lambdas.conftest import ACCOUNT, BOTTLEROCKET, K8S_VERSION, REGION, VLLM_TAG, FakeContext

EXECUTION = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:VllmColdstartPipeline-snapshot:run-1"


def plan_for(world: Any, defaults: Any, user_input: dict | None = None) -> BuildPlan:
    event = {"input": user_input or {}, "executionArn": EXECUTION, "stateMachineArn": "arn:sm", "startTime": "2026-01-01T00:00:00Z"}
    return resolve_input(event, defaults, ecr=world.gaps.client("ecr"), ssm=world.ssm, account=ACCOUNT, region=REGION, probe=world.gaps.anonymous_probe,
                         fetch=emulator.fetch_layer)


def network(world: Any) -> dict[str, Any]:
    vpc = world.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [world.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
               for i, z in enumerate("ab")]
    sg = world.ec2.create_security_group(GroupName="builder", Description="builder", VpcId=vpc)["GroupId"]
    iam = boto3.client("iam", region_name=REGION)
    profile = iam.create_instance_profile(InstanceProfileName=f"builder-{vpc}")["InstanceProfile"]["Arn"]
    return {"subnet_ids": subnets, "security_group_id": sg, "instance_profile_arn": profile}


def launch(world: Any, defaults: Any, plan: BuildPlan, execution: str = EXECUTION) -> dict[str, Any]:
    client = world.gaps.client("ec2")
    return builder.launch(client, plan=plan, execution_arn=execution, defaults=defaults, **network(world))


def stopped_builder(world: Any, defaults: Any) -> tuple[BuildPlan, str, Any]:
    """What the state machine has done before it snapshots: a plan, its builder launched and stopped.
    Returns the plan, the instance ID and the (recording) EC2 client."""
    plan = plan_for(world, defaults)
    instance_id = launch(world, defaults, plan)["instanceId"]
    ec2 = world.gaps.client("ec2")
    builder.stop(ec2, instance_id)
    return plan, instance_id, ec2


def create_snapshot(ec2: Any, defaults: Any, plan: BuildPlan, instance_id: str) -> dict[str, Any]:
    """snapshot.create of the instance's data volume for this test's execution."""
    return snapshot.create(ec2, instance_id=instance_id, plan=plan, execution_arn=EXECUTION, pipeline=defaults.pipelineName)


# --- builder ---------------------------------------------------------------------------------------------------
def test_builder_is_private_imdsv2_only_encrypted_and_tagged_with_the_execution(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    result = launch(world, defaults, plan)
    (instance,) = world.live_instances()
    assert instance["InstanceId"] == result["instanceId"]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert "PublicIpAddress" not in instance
    request = world.gaps.calls_to("ec2.run_instances")[0]
    assert request["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is False
    assert request["InstanceInitiatedShutdownBehavior"] == "terminate"
    volumes = {v["Attachments"][0]["Device"]: v for v in world.volumes()}
    data = volumes[names.BUILDER_DATA_DEVICE]
    assert (data["Size"], data["VolumeType"], data["Encrypted"]) == (defaults.dataVolumeSizeGiB, "gp3", True)
    data_request = next(m for m in request["BlockDeviceMappings"] if m["DeviceName"] == names.BUILDER_DATA_DEVICE)["Ebs"]
    assert (data_request["Iops"], data_request["Throughput"]) == (defaults.dataVolumeIops, defaults.dataVolumeThroughput)
    assert all(v["Encrypted"] for v in volumes.values())
    for resource in (instance, data):
        resource_tags = tags.as_dict(resource["Tags"])
        assert resource_tags[names.TAG_EXECUTION] == EXECUTION
        assert resource_tags[names.TAG_MANAGED_BY] == names.MANAGED_BY_VALUE
        assert resource_tags[names.TAG_PIPELINE] == defaults.pipelineName


def test_launch_tries_every_subnet_then_raises_insufficient_capacity(world: Any, defaults: Any) -> None:
    world.faults.insufficient_capacity = True
    with pytest.raises(InsufficientCapacity, match="no capacity for m6i.xlarge"):
        launch(world, defaults, plan_for(world, defaults))
    assert len({c["NetworkInterfaces"][0]["SubnetId"] for c in world.gaps.calls_to("ec2.run_instances")}) == 2
    assert world.live_instances() == []


def test_online_check_reads_ssm_ping_status(world: Any, defaults: Any) -> None:
    instance_id = launch(world, defaults, plan_for(world, defaults))["instanceId"]
    world.faults.ssm_ping = ["ConnectionLost", "Online"]
    ec2, ssm = world.gaps.client("ec2"), world.gaps.client("ssm")
    assert builder.check_online(ec2, ssm, instance_id)["online"] is False
    assert builder.check_online(ec2, ssm, instance_id)["online"] is True


# --- pull script ---------------------------------------------------------------------------------------------------
IMAGES = [
    {"reference": "111122223333.dkr.ecr.us-west-2.amazonaws.com/vllm/vllm-openai:v0.11.0", "digest": "sha256:" + "1" * 64,
     "pinned": "111122223333.dkr.ecr.us-west-2.amazonaws.com/vllm/vllm-openai@sha256:" + "1" * 64, "kind": "ecr-private"},
    {"reference": "public.ecr.aws/org/tool@sha256:" + "2" * 64, "digest": "sha256:" + "2" * 64,
     "pinned": "public.ecr.aws/org/tool@sha256:" + "2" * 64, "kind": "ecr-public"},
]
# The pull script itself runs against real containerd, the distribution registry and a host model
# derived from Bottlerocket's sources in tests/real/test_builder_pull.py; here: its parameters.


# Values that would break out of the document's single quotes, run a command or pass a ctr option if SSM let them through.
INJECTIONS = [
    "registry.example/app@sha256:" + "1" * 64 + "|0|-' ; touch /tmp/pwned ; echo '",
    "registry.example/app:$(id)|0|-",
    "registry.example/app:`id`|0|-",
    "registry.example/app;id|0|-",
    "registry.example/app|0|- ; id",
    "registry.example/app|2|-",
    "registry.example/app|0|-\nid",
    "--all-platforms|0|-",  # not shell, but a ctr option in the reference's place
    "registry.example/app|0|--debug",
]


@pytest.mark.parametrize("pulls", INJECTIONS)
def test_the_document_refuses_pull_records_that_could_inject_shell(pulls: str) -> None:
    document = pull_script.document_content()
    problems = pull_script.parameter_problems(document, {"pulls": [pulls], "platforms": ["linux/amd64"]})
    assert problems and problems[0].startswith("pulls=")
    with pytest.raises(ValueError, match="allowedPattern"):
        pull_script.render_commands(document, {"pulls": [pulls], "platforms": ["linux/amd64"]})


@pytest.mark.parametrize("platforms", ["linux/amd64;id", "linux/amd64 $(id)", "linux/s390x", "amd64", ""])
def test_the_document_refuses_platforms_outside_the_supported_ones(platforms: str) -> None:
    problems = pull_script.parameter_problems(pull_script.document_content(), {"pulls": ["r.example/a|0|-"], "platforms": [platforms]})
    assert [p for p in problems if p.startswith("platforms=")]


def test_command_parameters_refuse_a_reference_the_document_would_refuse_naming_it() -> None:
    bad = {**IMAGES[1], "pinned": "public.ecr.aws/org/tool@sha256:" + "2" * 64 + "';id;'"}
    with pytest.raises(InputValidationError, match="pulls=.*';id;'"):
        pull_script.command_parameters([bad], ["amd64"], "vol-0123456789abcdef0")


def create_pull_document(world: Any, defaults: Any) -> None:
    """The pipeline's document as the stack ships it (test_infra checks the template holds this content)."""
    world.ssm.create_document(Name=defaults.pull_document_name, Content=json.dumps(pull_script.document_content()),
                              DocumentType="Command", DocumentFormat="JSON")


def start_pull(world: Any, defaults: Any, instance_id: str, plan: BuildPlan) -> dict[str, Any]:
    create_pull_document(world, defaults)
    return pull.start(world.gaps.client("ssm"), instance_id=instance_id, plan=plan, execution_arn=EXECUTION, pull_timeout_seconds=600,
                      document_name=defaults.pull_document_name, data_volume_id="vol-0123456789abcdef0")


def test_ssm_command_runs_the_pipeline_document_with_data_parameters_and_no_credential(world: Any, defaults: Any) -> None:
    token = world.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    plan = plan_for(world, defaults)
    instance_id = launch(world, defaults, plan)["instanceId"]
    start_pull(world, defaults, instance_id, plan)
    (sent,) = world.gaps.calls_to("ssm.send_command")
    text = json.dumps(sent)
    assert token not in text and "get-login-password" not in text
    assert sent["DocumentName"] == defaults.pull_document_name == "VllmColdstartPipeline-PullImages"
    assert set(sent["Parameters"]) == {"pulls", "platforms", "dataVolumeId", "executionTimeout"} and sent["Parameters"]["executionTimeout"] == ["600"]
    images, platforms = pull_script.pulled_images(sent["Parameters"])
    assert [i["pinned"] for i in images] == [i.pinned for i in plan.images] and platforms == list(plan.platforms)
    assert not [c for c in world.gaps.calls if c[0] == "ecr.get_authorization_token"]


def test_send_command_without_the_pipeline_document_is_refused(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    instance_id = launch(world, defaults, plan)["instanceId"]
    with pytest.raises(ClientError, match="InvalidDocument"):
        pull.start(world.gaps.client("ssm"), instance_id=instance_id, plan=plan, execution_arn=EXECUTION, pull_timeout_seconds=600,
                   document_name=defaults.pull_document_name, data_volume_id="vol-0123456789abcdef0")


@pytest.mark.parametrize("status", ["Failed", "TimedOut", "Cancelled", "DeliveryTimedOut"])
def test_every_terminal_command_failure_raises_with_its_status(world: Any, defaults: Any, status: str) -> None:
    plan = plan_for(world, defaults)
    instance_id = launch(world, defaults, plan)["instanceId"]
    ssm = world.gaps.client("ssm")
    command_id = start_pull(world, defaults, instance_id, plan)["commandId"]
    world.faults.command_status = ["InProgress", status]
    assert pull.check(ssm, command_id=command_id, instance_id=instance_id) == {"done": False, "status": "InProgress"}
    with pytest.raises(PullCommandFailed, match=f"ended {status}"):
        pull.check(ssm, command_id=command_id, instance_id=instance_id)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("", "no verification line"),
        (f"{names.VERIFY_LINE_PREFIX} ref={IMAGES[0]['pinned']} missing=true", "not in containerd"),
        (pull_script.verify_line(IMAGES[0]["pinned"], "sha256:" + "9" * 64, ["amd64"], [names.CRI_MANAGED_LABEL, names.CRI_PINNED_LABEL]),
         "containerd holds digest"),
        (pull_script.verify_line(IMAGES[0]["pinned"], IMAGES[0]["digest"], ["amd64"], [names.CRI_MANAGED_LABEL]), "io.cri-containerd.pinned"),
        (pull_script.verify_line(IMAGES[0]["pinned"], IMAGES[0]["digest"], ["arm64"], [names.CRI_MANAGED_LABEL, names.CRI_PINNED_LABEL]),
         "linux/amd64 missing"),
    ],
)
def test_verification_rejects_missing_wrong_or_unpinned_images(output: str, problem: str) -> None:
    problems = pull_script.verification_problems(output, IMAGES[:1], ["amd64"])
    assert len(problems) == 1 and problem in problems[0]


def test_verify_step_raises_when_the_output_lacks_an_image(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    instance_id = launch(world, defaults, plan)["instanceId"]
    ssm = world.gaps.client("ssm")
    command_id = start_pull(world, defaults, instance_id, plan)["commandId"]
    world.faults.command_stdout = "pulled nothing"
    with pytest.raises(ImageVerificationFailed, match="no verification line"):
        pull.verify(ssm, command_id=command_id, instance_id=instance_id, plan=plan)


# --- snapshot ---------------------------------------------------------------------------------------------------------
def test_snapshot_of_the_data_volume_carries_images_digests_and_versions(world: Any, defaults: Any) -> None:
    plan, instance_id, ec2 = stopped_builder(world, defaults)
    result = create_snapshot(ec2, defaults, plan, instance_id)
    (snap,) = world.ec2.describe_snapshots(SnapshotIds=[result["snapshotId"]])["Snapshots"]
    data_volume = next(v for v in world.volumes() if v["Attachments"][0]["Device"] == names.BUILDER_DATA_DEVICE)
    assert snap["VolumeId"] == data_volume["VolumeId"]
    snap_tags = tags.as_dict(snap["Tags"])
    assert snap_tags[names.TAG_IMAGES] == plan.images[0].reference
    assert snap_tags[names.TAG_DIGESTS] == world.digest
    assert snap_tags[names.TAG_BOTTLEROCKET_VERSION] == BOTTLEROCKET
    assert snap_tags[names.TAG_KUBERNETES_VERSION] == K8S_VERSION
    assert snap_tags[names.TAG_EXECUTION] == EXECUTION and snap_tags[names.TAG_ROLE] == names.ROLE_SNAPSHOT
    assert snap_tags[names.TAG_CREATED_AT] == result["createdAt"]
    world.faults.snapshot_state = ["error"]
    with pytest.raises(SnapshotFailed, match="state error"):
        snapshot.check(ec2, result["snapshotId"])


def test_long_tag_values_keep_whole_items_and_say_how_many_are_left_out() -> None:
    digests = ["sha256:" + str(i) * 64 for i in range(1, 6)]
    value = tags.joined_value(digests)
    assert len(value) <= 256 and value.endswith("+2 more") and value.startswith(digests[0])


# --- cleanup and janitor ------------------------------------------------------------------------------------------------
def test_cleanup_terminates_deletes_volumes_and_unpublished_snapshots_but_keeps_the_published_one(world: Any, defaults: Any) -> None:
    plan, instance_id, ec2 = stopped_builder(world, defaults)
    published_snap = create_snapshot(ec2, defaults, plan, instance_id)
    stray = create_snapshot(ec2, defaults, plan, instance_id)
    world.publish_previous(published_snap["snapshotId"])
    result = cleanup.cleanup_execution(ec2, world.gaps.client("ssm"), execution_arn=EXECUTION, defaults=defaults)
    assert result["done"] is True and result["terminated"] == [instance_id]
    assert world.live_instances() == [] and world.volumes() == []
    assert [s["SnapshotId"] for s in world.snapshots()] == [published_snap["snapshotId"]]
    assert stray["snapshotId"] in result["deletedSnapshots"]


def test_cleanup_leaves_other_executions_alone(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    launch(world, defaults, plan, execution=EXECUTION + "-other")
    result = cleanup.cleanup_execution(world.gaps.client("ec2"), world.gaps.client("ssm"), execution_arn=EXECUTION, defaults=defaults)
    assert result["terminated"] == [] and len(world.live_instances()) == 1


def test_janitor_cleans_up_after_an_aborted_execution(world: Any, defaults: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an execution that was aborted with its builder running
    plan = plan_for(world, defaults)
    launch(world, defaults, plan)
    monkeypatch.setenv(names.ENV_PIPELINE_CONFIG, defaults.to_json())
    event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
             "detail": {"executionArn": EXECUTION, "stateMachineArn": "arn:sm", "status": "ABORTED"}}
    # When the janitor handles the status-change event
    result = janitor.handler(event, FakeContext())
    # Then nothing of that execution is left
    assert result["done"] is True and world.live_instances() == [] and world.volumes() == []


# --- gate ------------------------------------------------------------------------------------------------------------------
def _metadata(plan: BuildPlan, snapshot_id: str) -> str:
    return json.dumps(publish.metadata_document(plan=plan, snapshot={"snapshotId": snapshot_id, "createdAt": "x"}, execution_arn=EXECUTION))


def test_gate_treats_a_published_build_as_done_unless_forced_or_stale(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    execution = {"executionArn": EXECUTION, "stateMachineArn": "arn:aws:states:us-west-2:123456789012:stateMachine:none",
                 "startTime": "2026-01-01T00:00:00Z"}

    class NoRuns:
        def get_paginator(self, _: str) -> Any:
            return self

        def paginate(self, **_: Any) -> Any:
            return [{"executions": []}]

    ssm = world.gaps.client("ssm")
    assert gate.decide(NoRuns(), ssm, plan=plan, execution=execution, defaults=defaults)["decision"] == gate.PROCEED
    world.ssm.put_parameter(Name=defaults.metadata_parameter_name, Value=_metadata(plan, "snap-11111111"), Type="String")
    world.publish_previous("snap-11111111")
    assert gate.decide(NoRuns(), ssm, plan=plan, execution=execution, defaults=defaults) == {"decision": "published", "snapshotId": "snap-11111111"}
    assert gate.decide(NoRuns(), ssm, plan=dataclasses.replace(plan, force=True), execution=execution, defaults=defaults)["decision"] == gate.PROCEED
    world.publish_previous("snap-22222222")  # metadata now stale: the ID wins, rebuild
    assert gate.decide(NoRuns(), ssm, plan=plan, execution=execution, defaults=defaults)["decision"] == gate.PROCEED


def test_a_scheduled_run_holds_while_an_operator_rollback_is_published(world: Any, defaults: Any) -> None:
    """After `coldstart rollback`, the schedule must not rebuild the rolled-away image and undo it;
    pushes, console runs and force still build."""
    from coldstart.ops.snapshots import apply_rollback, plan_rollback

    manual = plan_for(world, defaults)
    scheduled = plan_for(world, defaults, {"trigger": "schedule"})
    assert scheduled.trigger == names.TRIGGER_SCHEDULE
    execution = {"executionArn": EXECUTION, "stateMachineArn": "arn:aws:states:us-west-2:123456789012:stateMachine:none",
                 "startTime": "2026-01-01T00:00:00Z"}
    ssm, ec2 = world.gaps.client("ssm"), world.gaps.client("ec2")
    instance_id = launch(world, defaults, manual)["instanceId"]
    older, newer = (create_snapshot(ec2, defaults, manual, instance_id)["snapshotId"] for _ in range(2))
    old_image = manual.images[0].pinned.split("@")[0] + "@sha256:" + "0" * 64
    old_plan = dataclasses.replace(  # an older build
        manual, images=(dataclasses.replace(manual.images[0], digest="sha256:" + "0" * 64, pinned=old_image),))
    world.ssm.put_parameter(Name=defaults.metadata_parameter_name, Value=_metadata(old_plan, older), Type="String")
    world.publish_previous(older)
    world.ssm.put_parameter(Name=defaults.metadata_parameter_name, Value=_metadata(manual, newer), Type="String", Overwrite=True)
    world.publish_previous(newer)
    no_runs = FakeRuns({})

    # Without a rollback, a scheduled run of the published build is a no-op (no hold involved)
    assert gate.decide(no_runs, ssm, plan=scheduled, execution=execution, defaults=defaults) == {"decision": "published", "snapshotId": newer}
    # After rolling back to the older build, the schedule holds...
    apply_rollback(ssm, defaults.snapshotParameterName, plan_rollback(ssm, ec2, defaults.snapshotParameterName))
    assert gate.decide(no_runs, ssm, plan=scheduled, execution=execution, defaults=defaults) == {
        "decision": "published", "snapshotId": older, "hold": "rollback"}
    # ...while a console run or force builds the current image again
    assert gate.decide(no_runs, ssm, plan=manual, execution=execution, defaults=defaults)["decision"] == gate.PROCEED
    assert gate.decide(no_runs, ssm, plan=dataclasses.replace(scheduled, force=True), execution=execution, defaults=defaults)["decision"] == gate.PROCEED


class FakeRuns:
    """list_executions (RUNNING) and describe_execution over {executionArn: (startDate, input)}."""

    def __init__(self, runs: dict[str, tuple[str, dict[str, Any]]]) -> None:
        from datetime import datetime

        self.runs = {arn: (datetime.fromisoformat(start), json.dumps(data)) for arn, (start, data) in runs.items()}

    def get_paginator(self, _: str) -> Any:
        return self

    def paginate(self, **_: Any) -> Any:
        return [{"executions": [{"executionArn": arn, "startDate": start} for arn, (start, _) in self.runs.items()]}]

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        return {"executionArn": executionArn, "input": self.runs[executionArn][1]}


def test_gate_supersedes_an_ecr_run_only_by_a_newer_push_of_the_same_repository(world: Any, defaults: Any) -> None:
    push = {"trigger": "ecr", "repositoryName": defaults.vllmRepository, "imageTag": VLLM_TAG, "imageDigest": world.digest}
    plan = plan_for(world, defaults, push)
    me = {"executionArn": EXECUTION, "stateMachineArn": "arn:sm", "startTime": "2026-01-01T00:00:00+00:00"}
    newer_arn = EXECUTION + "-newer"
    mine = {EXECUTION: ("2026-01-01T00:00:00+00:00", push)}
    ssm = world.gaps.client("ssm")

    def decide(newer_input: dict[str, Any]) -> dict[str, Any]:
        runs = FakeRuns({**mine, newer_arn: ("2026-01-01T00:00:05+00:00", newer_input)})
        return gate.decide(runs, ssm, plan=plan, execution=me, defaults=defaults)

    # a newer push of the same repository builds the newer digest: this one yields
    assert decide({**push, "imageDigest": "sha256:" + "b" * 64}) == {"decision": gate.SUPERSEDED, "by": newer_arn}
    assert decide({"repositoryName": defaults.vllmRepository, "imageDigest": "sha256:" + "b" * 64})["decision"] == gate.SUPERSEDED
    # a newer manual or scheduled run (its own images, maybe ending AlreadyPublished) must not drop the pushed digest:
    # this older run proceeds, the newer one waits for it
    for newer in ({}, {"force": True}, {"trigger": "schedule"}, {"images": ["public.ecr.aws/x/y@sha256:" + "c" * 64]},
                  {"trigger": "ecr", "repositoryName": "someone/else", "imageTag": "v1", "imageDigest": "sha256:" + "d" * 64}):
        assert decide(newer) == {"decision": gate.PROCEED}, newer


# --- publish ------------------------------------------------------------------------------------------------------------
def _publish(world: Any, defaults: Any, plan: BuildPlan, snapshot_id: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    reports: list[tuple[str, str]] = []
    result = publish.publish(world.gaps.client("ssm"), world.gaps.client("ec2"), plan=plan,
                             snapshot={"snapshotId": snapshot_id, "createdAt": "2026-01-01T00:00:00Z"}, execution_arn=EXECUTION,
                             defaults=defaults, report=lambda problem, detail: reports.append((problem, detail)))
    return result, reports


def _throttle_id_write(world: Any, defaults: Any, *, also_metadata_restore: bool = False) -> None:
    writes = {"n": 0}

    def throttled(op: str, kwargs: dict[str, Any]) -> bool:
        if op == "ssm.put_parameter" and kwargs["Name"] == defaults.metadata_parameter_name:
            writes["n"] += 1
            return also_metadata_restore and writes["n"] > 1  # the first write (the new metadata) goes through
        if op == "ssm.delete_parameter":
            return also_metadata_restore
        return op == "ssm.put_parameter" and kwargs["Name"] == defaults.snapshotParameterName

    world.faults.throttle_when = throttled


def test_publish_writes_metadata_then_the_id(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    result, reports = _publish(world, defaults, plan, "snap-0aaaaaaaaaaaaaaaa")
    assert world.parameter() == "snap-0aaaaaaaaaaaaaaaa" and result["snapshotId"] == "snap-0aaaaaaaaaaaaaaaa"
    assert json.loads(world.parameter(defaults.metadata_parameter_name))["snapshotId"] == "snap-0aaaaaaaaaaaaaaaa"
    assert [c["Name"] for c in world.gaps.calls_to("ssm.put_parameter")] == [defaults.metadata_parameter_name, defaults.snapshotParameterName]
    assert reports == []


def test_publish_puts_the_previous_metadata_back_when_the_id_write_fails(world: Any, defaults: Any) -> None:
    # Given a consistent earlier publish
    plan = plan_for(world, defaults)
    world.ssm.put_parameter(Name=defaults.metadata_parameter_name, Value=_metadata(plan, "snap-11111111"), Type="String")
    world.publish_previous("snap-11111111")
    before = world.parameter(defaults.metadata_parameter_name)
    # When the metadata write succeeds but the ID write is throttled
    _throttle_id_write(world, defaults)
    with pytest.raises(ClientError, match="Throttling"):
        _publish(world, defaults, plan, "snap-0bbbbbbbbbbbbbbbb")
    # Then the ID is the previous one and the metadata describes it again (not the snapshot cleanup will delete)
    assert world.parameter() == "snap-11111111"
    assert world.parameter(defaults.metadata_parameter_name) == before
    written = [json.loads(c["Value"])["snapshotId"] for c in world.gaps.calls_to("ssm.put_parameter") if c["Name"] == defaults.metadata_parameter_name]
    assert written == ["snap-0bbbbbbbbbbbbbbbb", "snap-11111111"]  # it was written, then restored
    # ... so the same build is again recognised as published
    assert gate.published_build(world.ssm, defaults) is not None


def test_publish_removes_a_first_metadata_write_when_the_id_write_fails(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    _throttle_id_write(world, defaults)
    with pytest.raises(ClientError, match="Throttling"):
        _publish(world, defaults, plan, "snap-0bbbbbbbbbbbbbbbb")
    assert world.parameter() is None and world.parameter(defaults.metadata_parameter_name) is None
    assert len(world.gaps.calls_to("ssm.delete_parameter")) == 1


def test_publish_reports_a_failed_metadata_restore_and_raises_the_id_writes_error(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    world.ssm.put_parameter(Name=defaults.metadata_parameter_name, Value=_metadata(plan, "snap-11111111"), Type="String")
    world.publish_previous("snap-11111111")
    _throttle_id_write(world, defaults, also_metadata_restore=True)
    reports: list[tuple[str, str]] = []
    with pytest.raises(ClientError) as raised:
        publish.publish(world.gaps.client("ssm"), world.gaps.client("ec2"), plan=plan,
                        snapshot={"snapshotId": "snap-0bbbbbbbbbbbbbbbb", "createdAt": "x"}, execution_arn=EXECUTION,
                        defaults=defaults, report=lambda problem, detail: reports.append((problem, detail)))
    assert raised.value.operation_name == "PutParameter"
    assert [problem for problem, _ in reports] == ["MetadataRestoreFailed"]
    # the metadata is left stale (names a snapshot the ID does not): readers already treat that as stale
    assert world.parameter() == "snap-11111111"
    assert gate.published_build(world.ssm, defaults) is None


# --- retention -----------------------------------------------------------------------------------------------------------
def test_retention_keeps_published_and_rollback_target_even_when_newer_snapshots_exist(world: Any, defaults: Any) -> None:
    plan = plan_for(world, defaults)
    instance_id = launch(world, defaults, plan)["instanceId"]
    ec2 = world.gaps.client("ec2")
    make = [create_snapshot(ec2, defaults, plan, instance_id)["snapshotId"] for _ in range(5)]
    oldest, rollback, newer1, newer2, current = make
    world.publish_previous(oldest)
    world.publish_previous(rollback)
    world.publish_previous(current)
    result = retention.apply_retention(ec2, world.gaps.client("ssm"), defaults=replace_retention(defaults, 2))
    remaining = {s["SnapshotId"] for s in world.snapshots()}
    assert remaining == {current, rollback}
    assert set(result["deleted"]) == {oldest, newer1, newer2}


def replace_retention(defaults: Any, count: int) -> Any:
    from dataclasses import replace

    return replace(defaults, snapshotRetentionCount=count)


# --- Fast Snapshot Restore (module functions the CLI's rollback reuses) ---------------------------------------------------
def test_fsr_enable_and_disable_report_states_per_az(world: Any) -> None:
    ec2 = world.gaps.client("ec2")
    assert fsr.enable_fsr(ec2, "snap-1", ["us-west-2a", "us-west-2b"])["states"] == {"us-west-2a": "enabling", "us-west-2b": "enabling"}
    assert fsr.fsr_states(ec2, "snap-1") == {"us-west-2a": "enabling", "us-west-2b": "enabling"}
    assert set(fsr.disable_fsr(ec2, "snap-1")["states"]) == {"us-west-2a", "us-west-2b"}
    assert fsr.fsr_states(ec2, "snap-1") == {}


def test_retention_after_an_operator_rollback_protects_the_next_rollback_target(world: Any, defaults: Any) -> None:
    """Retention and `coldstart rollback` share one rule: after rolling back from C to B, the next
    rollback goes to A (not back to C), so retention must keep A and may delete C."""
    from coldstart.ops.snapshots import apply_rollback, plan_rollback

    plan = plan_for(world, defaults)
    instance_id = launch(world, defaults, plan)["instanceId"]
    ec2 = world.gaps.client("ec2")
    ssm = world.gaps.client("ssm")
    a, b, c = (create_snapshot(ec2, defaults, plan, instance_id)["snapshotId"] for _ in range(3))
    for snap in (a, b, c):
        world.publish_previous(snap)
    rollback_plan = plan_rollback(ssm, ec2, defaults.snapshotParameterName)
    assert (rollback_plan.current, rollback_plan.target) == (c, b)
    apply_rollback(ssm, defaults.snapshotParameterName, rollback_plan)
    assert retention.rollback_target(ssm, defaults.snapshotParameterName) == a

    result = retention.apply_retention(ec2, ssm, defaults=replace_retention(defaults, 2))
    assert {s["SnapshotId"] for s in world.snapshots()} == {a, b}
    assert (result["published"], result["rollbackTarget"], result["deleted"]) == (b, a, [c])


# --- cold imports ------------------------------------------------------------------------------------------------
def test_importing_the_handlers_leaves_boto3_xray_and_urllib_request_for_the_first_invocation() -> None:
    """Lambda pays every module-level import on each cold start: boto3, the X-Ray SDK (Tracer) and
    urllib.request are imported by the code path that uses them, never by importing a handler."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    handlers = sorted(p.stem for p in (root / "lambdas" / "snapshot_pipeline" / "handlers").glob("[a-z]*.py"))
    script = (
        "import importlib, sys\n"
        f"for name in {handlers!r}:\n"
        "    importlib.import_module('lambdas.snapshot_pipeline.handlers.' + name)\n"
        "print(sorted(m for m in ('boto3', 'aws_xray_sdk', 'urllib.request') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert len(handlers) == 15
    assert done.stdout.strip() == "[]"
