"""Remove everything one execution created except the snapshot it published.

Used by the state machine on success and on every failure path, and by the janitor when an
execution ended without running its own cleanup (aborted, timed out). Idempotent: the state
machine calls it until ``done``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from settings import names, parameter_store

from ..core.aws_errors import error_code, translate
from ..core.defaults import PipelineDefaults
from ..core.tags import execution_filters


def published_ids(ssm: Any, parameter: str) -> set[str]:
    """Every snapshot ID the parameter holds or ever held (its history): never deleted by cleanup."""
    current = parameter_store.get(ssm, parameter)
    ids = {current} if current else set()
    ids.update(str(p["Value"]) for p in parameter_store.history(ssm, parameter))
    return ids


def cleanup_execution(ec2: Any, ssm: Any, *, execution_arn: str, defaults: PipelineDefaults) -> dict[str, Any]:
    filters = execution_filters(defaults.pipelineName, execution_arn)
    result: dict[str, Any] = {"terminated": [], "deletedVolumes": [], "deletedSnapshots": [], "remaining": []}

    instances = [
        i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"] if i["State"]["Name"] != "terminated"
    ]
    to_terminate = [i["InstanceId"] for i in instances if i["State"]["Name"] != "shutting-down"]
    if to_terminate:
        ec2.terminate_instances(InstanceIds=to_terminate)
        result["terminated"] = to_terminate
    if instances:  # re-read: an instance counts as remaining until EC2 reports it terminated
        ids = [i["InstanceId"] for i in instances]
        states = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
        result["remaining"] += [i["InstanceId"] for i in states if i["State"]["Name"] != "terminated"]

    for volume in ec2.describe_volumes(Filters=filters)["Volumes"]:
        volume_id = volume["VolumeId"]
        if volume["State"] == "available":
            _delete(lambda v=volume_id: ec2.delete_volume(VolumeId=v), volume_id, result, "deletedVolumes")
        elif volume["State"] != "deleting":
            result["remaining"].append(volume_id)  # attached to the terminating builder: deleted on termination

    protected = published_ids(ssm, defaults.snapshotParameterName)
    for snap in ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]:
        snapshot_id = snap["SnapshotId"]
        if snapshot_id in protected:
            continue
        _delete(lambda s=snapshot_id: ec2.delete_snapshot(SnapshotId=s), snapshot_id, result, "deletedSnapshots")

    result["done"] = not result["remaining"]
    return result


def _delete(call: Any, resource_id: str, result: dict[str, Any], key: str) -> None:
    try:
        call()
        result[key].append(resource_id)
    except ClientError as exc:
        code = error_code(exc)
        if code.endswith(".NotFound"):
            return
        if code in ("IncorrectState", "VolumeInUse", "InvalidSnapshot.InUse", "IncorrectInstanceState"):
            result["remaining"].append(resource_id)  # try again on the next round
            return
        raise translate(exc) from exc


def is_pipeline_snapshot(tags: dict[str, str], pipeline: str) -> bool:
    return (
        tags.get(names.TAG_MANAGED_BY) == names.MANAGED_BY_VALUE
        and tags.get(names.TAG_PIPELINE) == pipeline
        and tags.get(names.TAG_ROLE) == names.ROLE_SNAPSHOT
    )
