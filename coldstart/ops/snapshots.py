"""snapshots and rollback: what the pipeline has built, what is published, and going back one.

Rollback works from Parameter Store's own history of the snapshot parameter. The metadata
parameter records each rollback (``"rollback": {"from": <id>, ...}``) so a second rollback goes
further back instead of returning to the snapshot that was just rolled away from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from coldstart.ops.errors import OperatorError
from lambdas.snapshot_pipeline.steps.retention import rollback_target  # one rule for retention and rollback
from settings import names, parameter_store

ROLLBACK_KEY = names.METADATA_ROLLBACK_KEY


@dataclass(frozen=True)
class SnapshotRow:
    snapshot_id: str
    state: str
    images: str
    bottlerocket_version: str
    size_gib: int
    started: datetime
    published: bool
    rollback_target: bool


def pipeline_snapshots(ec2: Any) -> list[dict[str, Any]]:
    """Snapshots the pipeline created (by its managed-by tag), newest first."""
    snapshots: list[dict[str, Any]] = []
    filters = [{"Name": f"tag:{names.TAG_MANAGED_BY}", "Values": [names.MANAGED_BY_VALUE]}]
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters):
        snapshots.extend(page["Snapshots"])
    return sorted(snapshots, key=lambda s: s["StartTime"], reverse=True)


def tags_of(snapshot: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}


def published_snapshot_id(ssm: Any, parameter: str) -> str | None:
    return parameter_store.get(ssm, parameter)




def _metadata_versions(ssm: Any, parameter: str) -> list[dict[str, Any]]:
    out = []
    for version in parameter_store.history(ssm, names.metadata_parameter_name(parameter)):
        try:
            value = json.loads(version["Value"])
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


@dataclass(frozen=True)
class RollbackPlan:
    current: str
    target: str
    metadata: dict[str, Any]  # what will be written to <parameter>/metadata


def plan_rollback(ssm: Any, ec2: Any, parameter: str, now: datetime | None = None) -> RollbackPlan:
    """Decide what a rollback would publish; OperatorError when it cannot."""
    current = published_snapshot_id(ssm, parameter)
    if current is None:
        raise OperatorError(f"nothing to roll back: {parameter} is not set (no snapshot was ever published)")
    target = rollback_target(ssm, parameter)
    if target is None:
        raise OperatorError(f"nothing to roll back to: {parameter} has no earlier snapshot than {current}")
    snapshot = _describe_snapshot(ec2, target)
    if snapshot is None:
        raise OperatorError(f"cannot roll back to {target}: the snapshot no longer exists (deleted by retention?); rebuild with create-snapshot")
    if snapshot["State"] != "completed":
        raise OperatorError(f"cannot roll back to {target}: snapshot state is {snapshot['State']}, not completed")
    metadata = _metadata_for(ssm, parameter, target, snapshot)
    metadata[ROLLBACK_KEY] = {"from": current, "at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"), "by": "coldstart rollback"}
    return RollbackPlan(current=current, target=target, metadata=metadata)


def _describe_snapshot(ec2: Any, snapshot_id: str) -> dict[str, Any] | None:
    try:
        found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"):
            return None
        raise
    return found[0] if found else None


def _metadata_for(ssm: Any, parameter: str, snapshot_id: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The metadata published with that snapshot; rebuilt from its tags when history lost it."""
    for meta in reversed(_metadata_versions(ssm, parameter)):
        if meta.get("snapshotId") == snapshot_id:
            return {k: v for k, v in meta.items() if k != ROLLBACK_KEY}
    tags = tags_of(snapshot)
    images = [i for i in tags.get(names.TAG_IMAGES, "").split() if i]
    return {
        "snapshotId": snapshot_id,
        "bottlerocketVersion": tags.get(names.TAG_BOTTLEROCKET_VERSION, ""),
        "kubernetesVersion": tags.get(names.TAG_KUBERNETES_VERSION, ""),
        "images": [{"reference": ref} for ref in images],
        "executionArn": tags.get(names.TAG_EXECUTION, ""),
        "createdAt": tags.get(names.TAG_CREATED_AT, snapshot["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ")),
    }


def apply_rollback(ssm: Any, parameter: str, plan: RollbackPlan) -> None:
    """Metadata first, the ID last: readers treat the ID as the commit point (as the pipeline does)."""
    parameter_store.put(
        ssm, names.metadata_parameter_name(parameter), json.dumps(plan.metadata, sort_keys=True),
        tier="Intelligent-Tiering",  # as the pipeline publishes it: a long image list may exceed 4 KB
    )
    parameter_store.put(ssm, parameter, plan.target)


def snapshot_rows(ec2: Any, ssm: Any, parameter: str) -> list[SnapshotRow]:
    published = published_snapshot_id(ssm, parameter)
    target = rollback_target(ssm, parameter) if published else None
    rows = []
    for snap in pipeline_snapshots(ec2):
        tags = tags_of(snap)
        rows.append(
            SnapshotRow(
                snapshot_id=snap["SnapshotId"],
                state=snap["State"],
                images=tags.get(names.TAG_IMAGES, ""),
                bottlerocket_version=tags.get(names.TAG_BOTTLEROCKET_VERSION, ""),
                size_gib=int(snap.get("VolumeSize", 0)),
                started=snap["StartTime"],
                published=snap["SnapshotId"] == published,
                rollback_target=snap["SnapshotId"] == target,
            )
        )
    return rows


def age(started: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - started).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
