"""The REAL state-machine definition from the synthesized template, run by moto's interpreter, invoking
the REAL handlers in-process (coldstart.emulator). One test per outcome; every failure must leave
nothing behind and keep the previously published snapshot ID."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.snapshot_pipeline.core import errors, tags
from settings import names
from stacks.pipeline.state_machine import RETRY_POLICY
from tests.lambdas.conftest import BOTTLEROCKET, K8S_VERSION, PREVIOUS_SNAPSHOT, TEST_CONFIG_OVERRIDES, VLLM_TAG

pytestmark = [pytest.mark.e2e, pytest.mark.synth]

METADATA = names.metadata_parameter_name(names.DEFAULT_SNAPSHOT_PARAMETER)


def assert_nothing_left_behind(world: Any, execution_arn: str) -> None:
    assert world.live_instances() == [], "builder instance still running"
    assert world.volumes() == [], "builder volumes left"
    assert [s for s in world.snapshots() if tags.as_dict(s.get("Tags")).get(names.TAG_EXECUTION) == execution_arn] == []


def test_happy_path_publishes_metadata_then_the_id_and_leaves_no_builder(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    world.faults.ssm_ping = ["ConnectionLost", "Online"]  # exercise the online loop
    world.faults.command_status = ["InProgress", "Success"]  # and the command loop
    result = pipeline.run({})
    assert result.status == "SUCCEEDED", (result.error, result.cause)

    snapshot_id = world.parameter()
    assert snapshot_id == result.output["published"]["snapshotId"]
    metadata = json.loads(world.parameter(METADATA))
    assert metadata["snapshotId"] == snapshot_id
    assert metadata["images"][0]["digest"] == world.digest and metadata["images"][0]["pinned"].endswith(f"@{world.digest}")
    assert (metadata["bottlerocketVersion"], metadata["kubernetesVersion"], metadata["platforms"]) == (BOTTLEROCKET, K8S_VERSION, ["amd64"])
    assert metadata["executionArn"] == result.arn
    (snap,) = world.snapshots()
    snap_tags = tags.as_dict(snap["Tags"])
    assert snap["SnapshotId"] == snapshot_id and snap_tags[names.TAG_DIGESTS] == world.digest
    assert snap_tags[names.TAG_EXECUTION] == result.arn
    # the pull script was told to check containerd's root against the very volume that was snapshotted
    (sent,) = world.gaps.calls_to("ssm.send_command")
    assert sent["Parameters"]["dataVolumeId"] == [snap["VolumeId"]]
    # and the builder booted with the instance-id hostname source (no ec2:DescribeInstances at boot)
    (launch,) = world.gaps.calls_to("ec2.run_instances")
    assert 'hostname-override-source = "instance-id"' in launch["UserData"]
    # the builder ran terminated, and no volume is left
    (instance,) = [i for r in world.ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert instance["State"]["Name"] == "terminated" and world.volumes() == []
    # ... and the metadata was written before the ID
    puts = [c["Name"] for c in world.gaps.calls_to("ssm.put_parameter")]
    assert puts == [METADATA, names.DEFAULT_SNAPSHOT_PARAMETER]
    entered = pipeline.states_entered(result.arn)
    assert entered.count("CheckBuilderOnline") == 2 and entered.count("CheckPull") == 2


def test_ecr_push_input_builds_the_pushed_digest(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    result = pipeline.run({"trigger": "ecr", "repositoryName": "vllm/vllm-openai", "imageTag": VLLM_TAG, "imageDigest": world.digest})
    assert result.status == "SUCCEEDED", result.cause
    assert json.loads(world.parameter(METADATA))["images"][0]["digest"] == world.digest


def test_invalid_input_fails_at_the_first_state_and_launches_nothing(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    result = pipeline.run({"platforms": ["s390x"]})
    assert result.status == "FAILED"
    assert result.error == errors.InputValidationError.__name__
    assert "input.platforms" in result.cause and "s390x" in result.cause
    assert pipeline.states_entered(result.arn) == ["ResolveInput"]
    assert world.gaps.calls_to("ec2.run_instances") == [] and world.parameter() is None


@pytest.mark.parametrize(
    ("fault", "error", "cause"),
    [
        ({"ssm_ping": ["ConnectionLost"]}, errors.BUILDER_ONLINE_TIMEOUT, "did not report builder"),
        ({"command_status": ["InProgress", "Failed"]}, errors.PullCommandFailed.__name__, "ended Failed"),
        ({"command_status": ["TimedOut"]}, errors.PullCommandFailed.__name__, "ended TimedOut"),
        ({"command_status": ["Cancelled"]}, errors.PullCommandFailed.__name__, "ended Cancelled"),
        ({"command_status": ["DeliveryTimedOut"]}, errors.PullCommandFailed.__name__, "ended DeliveryTimedOut"),
        ({"command_stdout": "pulled nothing"}, errors.ImageVerificationFailed.__name__, "no verification line"),
        ({"snapshot_state": ["pending", "error"]}, errors.SnapshotFailed.__name__, "state error"),
        ({"throttle": {"ssm.put_parameter": -1}}, errors.AwsThrottled.__name__, "PutParameter was throttled"),
        ({"insufficient_capacity": True}, errors.InsufficientCapacity.__name__, "no capacity"),
    ],
    ids=["ssm-never-online", "command-failed", "command-timed-out", "command-cancelled", "delivery-timed-out",
         "verification-failed", "snapshot-error", "publish-throttled", "insufficient-capacity"],
)
def test_each_failure_fails_the_run_cleans_up_and_keeps_the_published_snapshot(
    world: Any, pipeline_template: dict, fault: dict[str, Any], error: str, cause: str
) -> None:
    pipeline = world.deploy(pipeline_template)
    world.publish_previous()
    for key, value in fault.items():
        setattr(world.faults, key, value)
    result = pipeline.run({})
    assert result.status == "FAILED"
    assert result.error == error and cause in result.cause
    assert_nothing_left_behind(world, result.arn)
    assert world.parameter() == PREVIOUS_SNAPSHOT
    assert "Cleanup" in pipeline.states_entered(result.arn)


def test_publish_throttling_is_retried_per_policy_before_failing(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    world.faults.throttle = {"ssm.put_parameter": -1}
    result = pipeline.run({})
    assert result.error == errors.AwsThrottled.__name__
    transient = next(r for r in RETRY_POLICY if errors.AwsThrottled.__name__ in r.errors)
    assert len(world.gaps.calls_to("ssm.put_parameter")) == 1 + transient.max_attempts
    assert world.parameter(METADATA) is None


def _throttle_id_write(world: Any, times: int) -> None:
    """Throttle only the snapshot ID's write (the metadata write before it goes through): ``times`` calls, -1 = always."""
    left = {"n": times}

    def throttled(op: str, kwargs: dict[str, Any]) -> bool:
        if op != "ssm.put_parameter" or kwargs["Name"] != names.DEFAULT_SNAPSHOT_PARAMETER or left["n"] == 0:
            return False
        left["n"] -= 1
        return True

    world.faults.throttle_when = throttled


def test_metadata_written_then_id_write_throttled_keeps_the_previous_id_and_matching_metadata(world: Any, pipeline_template: dict) -> None:
    # Given a consistent earlier publish
    pipeline = world.deploy(pipeline_template)
    previous_metadata = json.dumps({"snapshotId": PREVIOUS_SNAPSHOT, "bottlerocketVersion": "1.49.0", "kubernetesVersion": "1.33",
                                    "images": [], "platforms": ["amd64"], "executionArn": "arn:earlier", "createdAt": "2025-12-01T00:00:00Z"})
    world.ssm.put_parameter(Name=METADATA, Value=previous_metadata, Type="String")
    world.publish_previous()
    # When every write of the ID is throttled (each metadata write before it succeeds)
    _throttle_id_write(world, -1)
    result = pipeline.run({})
    # Then the run fails after the retries, cleans up, and both parameters still describe the previous snapshot
    assert result.status == "FAILED" and result.error == errors.AwsThrottled.__name__, result.cause
    assert_nothing_left_behind(world, result.arn)
    assert world.parameter() == PREVIOUS_SNAPSHOT
    assert world.parameter(METADATA) == previous_metadata
    transient = next(r for r in RETRY_POLICY if errors.AwsThrottled.__name__ in r.errors)
    metadata_writes = [json.loads(c["Value"])["snapshotId"] for c in world.gaps.calls_to("ssm.put_parameter") if c["Name"] == METADATA]
    built = next(w for w in metadata_writes if w != PREVIOUS_SNAPSHOT)
    assert metadata_writes == [built, PREVIOUS_SNAPSHOT] * (1 + transient.max_attempts)  # each attempt: write, then restore


def test_a_once_throttled_id_write_is_retried_and_publishes_consistently(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    world.publish_previous()
    _throttle_id_write(world, 1)
    result = pipeline.run({})
    assert result.status == "SUCCEEDED", result.cause
    assert world.parameter() == result.output["published"]["snapshotId"] != PREVIOUS_SNAPSHOT
    assert json.loads(world.parameter(METADATA))["snapshotId"] == world.parameter()


def test_transient_throttling_recovers_and_publishes(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    world.faults.throttle = {"ssm.put_parameter": 2}
    result = pipeline.run({})
    assert result.status == "SUCCEEDED", result.cause
    assert world.parameter() == result.output["published"]["snapshotId"]


def test_a_repeated_trigger_for_the_published_build_launches_nothing(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    first = pipeline.run({})
    assert first.status == "SUCCEEDED", first.cause
    launches = len(world.gaps.calls_to("ec2.run_instances"))
    again = pipeline.run({"trigger": "ecr", "repositoryName": "vllm/vllm-openai", "imageTag": VLLM_TAG, "imageDigest": world.digest})
    assert again.status == "SUCCEEDED"
    assert "AlreadyPublished" in pipeline.states_entered(again.arn)
    assert len(world.gaps.calls_to("ec2.run_instances")) == launches
    assert world.parameter() == first.output["published"]["snapshotId"]
    forced = pipeline.run({"force": True})
    assert forced.status == "SUCCEEDED" and world.parameter() != first.output["published"]["snapshotId"]


def test_retention_keeps_the_published_snapshot_and_its_rollback_target(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template, snapshotRetentionCount=2)
    published = []
    for _ in range(3):
        result = pipeline.run({"force": True})
        assert result.status == "SUCCEEDED", result.cause
        published.append(world.parameter())
    remaining = {s["SnapshotId"] for s in world.snapshots()}
    assert remaining == {published[2], published[1]}  # current + rollback target; the oldest expired
    history = [p["Value"] for p in world.ssm.get_parameter_history(Name=names.DEFAULT_SNAPSHOT_PARAMETER)["Parameters"]]
    assert history == published


def test_a_burst_of_pushes_builds_once(world: Any, pipeline_template: dict) -> None:
    # Given two pushes of the same tag back to back (the second is newer); the older run's gate looks
    # only once the newer has started (ordered by the test, not by racing the debounce timer)
    pipeline = world.deploy(pipeline_template)
    push = {"trigger": "ecr", "repositoryName": "vllm/vllm-openai", "imageTag": VLLM_TAG, "imageDigest": world.digest}
    older, newer = world.start_back_to_back(pipeline, push)
    older_result, newer_result = pipeline.wait(older), pipeline.wait(newer)
    # Then the older run yields, the newer one builds, and only one builder was launched
    assert older_result.status == newer_result.status == "SUCCEEDED"
    assert "Superseded" in pipeline.states_entered(older)
    assert "Published" in pipeline.states_entered(newer)
    assert len(world.gaps.calls_to("ec2.run_instances")) == 1


def test_fast_snapshot_restore_follows_the_published_snapshot(world: Any, pipeline_template: dict) -> None:
    azs = ["us-west-2a", "us-west-2b"]
    pipeline = world.deploy(pipeline_template, fastSnapshotRestoreAzs=azs)
    first = pipeline.run({})
    assert first.status == "SUCCEEDED", first.cause
    first_id = world.parameter()
    assert world.gaps.fsr[first_id] == {az: "enabling" for az in azs}
    assert first.output["published"]["fsr"]["enabled"]["states"] == {az: "enabling" for az in azs}
    second = pipeline.run({"force": True})
    assert second.status == "SUCCEEDED", second.cause
    assert world.gaps.fsr[world.parameter()] == {az: "enabling" for az in azs}
    assert world.gaps.fsr[first_id] == {}  # disabled on the superseded snapshot: it no longer bills


def test_failure_to_enable_fast_snapshot_restore_does_not_fail_the_publish(world: Any, pipeline_template: dict,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = world.deploy(pipeline_template, fastSnapshotRestoreAzs=["us-west-2a"])
    world.faults.fsr_enable_error = "InvalidRequest"
    result = pipeline.run({})
    assert result.status == "SUCCEEDED", result.cause
    assert world.parameter() == result.output["published"]["snapshotId"]
    assert "InvalidRequest" in result.output["published"]["fsr"]["enableError"]
    assert "FastSnapshotRestoreEnableFailed" in capsys.readouterr().out  # the EMF metric line


def test_rehearsal_runs_against_a_threaded_moto_server(pipeline_template: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator CLI's local rehearsal: same emulator, moto as an in-process HTTP server on 127.0.0.1."""
    import boto3
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    from coldstart import emulator

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        monkeypatch.setenv("MOTO_PORT", str(port))  # moto's interpreter calls Lambda at localhost:$MOTO_PORT
        monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", False)
        emulator.enable_state_machine_execution()
        with emulator.in_process_lambdas(), emulator.virtual_clock(), emulator.AwsGaps(endpoint_url=url).installed():
            emulator.seed_bottlerocket(kubernetes_version=K8S_VERSION, endpoint_url=url)
            emulator.seed_ecr_image(boto3.client("ecr", region_name="us-west-2", endpoint_url=url), "vllm/vllm-openai", VLLM_TAG)
            pipeline = emulator.LocalPipeline(pipeline_template, endpoint_url=url, config_overrides=TEST_CONFIG_OVERRIDES).deploy()
            result = pipeline.run({})
        assert result.status == "SUCCEEDED", result.cause
        ssm = boto3.client("ssm", region_name="us-west-2", endpoint_url=url)
        assert ssm.get_parameter(Name=names.DEFAULT_SNAPSHOT_PARAMETER)["Parameter"]["Value"] == result.output["published"]["snapshotId"]
    finally:
        server.stop()
