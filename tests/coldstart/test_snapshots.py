"""snapshots and rollback against moto's EC2 and Parameter Store (with its version history)."""

from __future__ import annotations

import json

import boto3
import pytest

from settings import names
from tests.coldstart.conftest import PARAM, REGION, parameter_value, pipeline_snapshot, publish


def metadata() -> dict:
    return json.loads(parameter_value(names.metadata_parameter_name(PARAM)))


def test_snapshots_lists_pipeline_snapshots_and_marks_the_published_one(aws, cli):
    old, new = pipeline_snapshot(version="1.49.0"), pipeline_snapshot(version="1.50.0")
    ec2 = boto3.client("ec2", region_name=REGION)
    foreign_volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    foreign = ec2.create_snapshot(VolumeId=foreign_volume)["SnapshotId"]
    publish(old, version="1.49.0")
    publish(new)

    result = cli("snapshots")

    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "snap-" in line}
    assert set(rows) == {old, new} and foreign not in result.stdout
    assert "● published" in rows[new] and "1.50.0" in rows[new] and "80 GiB" in rows[new]
    assert "rollback target" in rows[old] and "1.49.0" in rows[old]


def test_rollback_publishes_the_previous_snapshot_and_marks_the_metadata(aws, cli):
    old, new = pipeline_snapshot(version="1.49.0"), pipeline_snapshot()
    publish(old, version="1.49.0")
    publish(new)

    result = cli("rollback", "--yes")

    assert result.exit_code == 0, result.output
    assert parameter_value() == old
    meta = metadata()
    assert meta["snapshotId"] == old and meta["bottlerocketVersion"] == "1.49.0"
    assert meta["rollback"]["from"] == new
    assert f"published {old} (rollback from {new})" in result.stdout


def test_second_rollback_goes_further_back_not_forward_again(aws, cli):
    first, second, third = pipeline_snapshot(), pipeline_snapshot(), pipeline_snapshot()
    for snap in (first, second, third):
        publish(snap)

    assert cli("rollback", "--yes").exit_code == 0
    assert parameter_value() == second
    assert cli("rollback", "--yes").exit_code == 0

    assert parameter_value() == first  # not back to `third`, which was rolled away from


def test_rollback_refuses_without_history(aws, cli):
    only = pipeline_snapshot()
    publish(only)

    result = cli("rollback", "--yes")

    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: nothing to roll back to: {PARAM} has no earlier snapshot than {only}"
    assert parameter_value() == only


def test_rollback_refuses_when_nothing_is_published(aws, cli):
    result = cli("rollback", "--yes")

    assert result.exit_code == 1 and "is not set" in result.stderr


def test_rollback_refuses_when_the_previous_snapshot_was_deleted(aws, cli):
    old, new = pipeline_snapshot(), pipeline_snapshot()
    publish(old)
    publish(new)
    boto3.client("ec2", region_name=REGION).delete_snapshot(SnapshotId=old)

    result = cli("rollback", "--yes")

    assert result.exit_code == 1 and f"cannot roll back to {old}: the snapshot no longer exists" in result.stderr
    assert parameter_value() == new and metadata()["snapshotId"] == new


def test_rollback_asks_and_a_no_changes_nothing(aws, cli):
    old, new = pipeline_snapshot(), pipeline_snapshot()
    publish(old)
    publish(new)

    result = cli("rollback", input="n\n")

    assert result.exit_code == 1 and "cancelled" in result.stderr
    assert parameter_value() == new


def test_rollback_rebuilds_metadata_from_tags_when_history_lost_it(aws, cli):
    old, new = pipeline_snapshot(version="1.48.0"), pipeline_snapshot()
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAM, Value=old, Type="String")  # published before metadata existed
    publish(new)

    assert cli("rollback", "--yes").exit_code == 0

    meta = metadata()
    assert meta["snapshotId"] == old and meta["bottlerocketVersion"] == "1.48.0"
    assert meta["images"][0]["reference"].endswith("vllm/vllm-openai:v0.34.0")


def test_rollback_moves_fast_snapshot_restore_to_the_restored_snapshot(aws, cli, monkeypatch):
    old, new = pipeline_snapshot(), pipeline_snapshot()
    publish(old)
    publish(new)
    calls = []

    def enable_fsr(ec2, snapshot_id, azs):
        calls.append(("enable", snapshot_id, list(azs), parameter_value()))
        return {"states": {az: "enabling" for az in azs}, "errors": {}}

    def disable_fsr(ec2, snapshot_id, azs=None):
        calls.append(("disable", snapshot_id, azs, parameter_value()))
        return {"states": {}, "errors": {"us-west-2a": "InternalError: try again"}}

    monkeypatch.setattr("lambdas.snapshot_pipeline.steps.fsr.enable_fsr", enable_fsr)
    monkeypatch.setattr("lambdas.snapshot_pipeline.steps.fsr.disable_fsr", disable_fsr)

    # FSR and the (default) initialization rate exclude each other: switching to FSR turns the rate off.
    result = cli("-c", "fastSnapshotRestoreAzs=us-west-2a", "-c", "volumeInitializationRate=null", "rollback", "--yes")

    assert result.exit_code == 0, result.output
    # Enabled on the target while the old one is still published; disabled on the old one after.
    assert calls == [("enable", old, ["us-west-2a"], new), ("disable", new, None, old)]
    assert f"Fast Snapshot Restore still on for {new} (billed hourly) in us-west-2a: InternalError" in result.stderr


def test_rollback_without_fast_snapshot_restore_azs_does_not_touch_it(aws, cli, monkeypatch):
    old, new = pipeline_snapshot(), pipeline_snapshot()
    publish(old)
    publish(new)
    monkeypatch.setattr("lambdas.snapshot_pipeline.steps.fsr.enable_fsr", lambda *a, **k: pytest.fail("FSR enabled"))

    assert cli("rollback", "--yes").exit_code == 0
