"""Snapshot the builder's data volume and watch it complete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from settings import names

from ..build_plan import BuildPlan
from ..core.errors import SnapshotFailed
from ..core.tags import base_tags, joined_value, tag_list
from .builder import data_volume_id


def snapshot_tags(*, plan: BuildPlan, execution_arn: str, pipeline: str, created_at: str) -> dict[str, str]:
    tags = base_tags(pipeline, execution_arn, names.ROLE_SNAPSHOT)
    tags.update(
        {
            names.TAG_IMAGES: joined_value([image.reference for image in plan.images]),
            names.TAG_DIGESTS: joined_value([image.digest for image in plan.images]),
            names.TAG_BOTTLEROCKET_VERSION: plan.bottlerocket_version,
            names.TAG_KUBERNETES_VERSION: plan.kubernetes_version,
            names.TAG_CREATED_AT: created_at,
        }
    )
    return tags


def create(ec2: Any, *, instance_id: str, plan: BuildPlan, execution_arn: str, pipeline: str) -> dict[str, Any]:
    volume_id = data_volume_id(ec2, instance_id)
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = snapshot_tags(plan=plan, execution_arn=execution_arn, pipeline=pipeline, created_at=created_at)
    snapshot = ec2.create_snapshot(
        VolumeId=volume_id,
        Description=f"vllm-coldstart image cache: {tags[names.TAG_IMAGES]}"[:255],
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
    )
    return {"snapshotId": snapshot["SnapshotId"], "volumeId": volume_id, "createdAt": created_at}


def check(ec2: Any, snapshot_id: str) -> dict[str, Any]:
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    state = snapshot["State"]
    if state == "error":
        raise SnapshotFailed(f"snapshot {snapshot_id} is in state error ({snapshot.get('StateMessage', 'no message')}); it will be deleted")
    return {"completed": state == "completed", "state": state, "progress": snapshot.get("Progress", "")}
