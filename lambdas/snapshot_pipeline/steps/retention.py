"""Retention: keep the newest ``snapshotRetentionCount`` pipeline snapshots, always including the
published one and its predecessor (the rollback target, from the parameter's history)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from settings import names, parameter_store

from ..core.aws_errors import error_code, translate
from ..core.defaults import PipelineDefaults


def choose_rollback_target(history: list[str], rolled_away: set[str]) -> str | None:
    """The rule shared by retention and the operator's ``rollback``.

    ``history`` is the snapshot parameter's values, oldest first (the last is published). The
    target is the most recent earlier value that is not the published one and was not rolled back
    *from* (a second rollback goes further back instead of returning to the snapshot just left).
    """
    if not history:
        return None
    current = history[-1]
    for value in reversed(history):
        if value != current and value not in rolled_away:
            return value
    return None


def rolled_away_from(ssm: Any, parameter: str) -> set[str]:
    """Snapshot IDs an operator rolled back from, recorded in the metadata parameter's history."""
    out: set[str] = set()
    for version in parameter_store.history(ssm, names.metadata_parameter_name(parameter)):
        try:
            meta = json.loads(version["Value"])
        except ValueError:
            continue
        marker = meta.get(names.METADATA_ROLLBACK_KEY) if isinstance(meta, dict) else None
        if isinstance(marker, dict) and isinstance(marker.get("from"), str):
            out.add(marker["from"])
    return out


def rollback_target(ssm: Any, parameter: str) -> str | None:
    """The snapshot a rollback would publish now (None: there is none)."""
    values = [str(v["Value"]) for v in parameter_store.history(ssm, parameter)]
    return choose_rollback_target(values, rolled_away_from(ssm, parameter))


def apply_retention(ec2: Any, ssm: Any, *, defaults: PipelineDefaults) -> dict[str, Any]:
    current = parameter_store.get(ssm, defaults.snapshotParameterName)
    previous = rollback_target(ssm, defaults.snapshotParameterName) if current else None
    protected = {s for s in (current, previous) if s}
    filters = [
        {"Name": f"tag:{names.TAG_MANAGED_BY}", "Values": [names.MANAGED_BY_VALUE]},
        {"Name": f"tag:{names.TAG_PIPELINE}", "Values": [defaults.pipelineName]},
        {"Name": f"tag:{names.TAG_ROLE}", "Values": [names.ROLE_SNAPSHOT]},
    ]
    snapshots = [s for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters) for s in page["Snapshots"]]
    snapshots.sort(key=lambda s: s["StartTime"], reverse=True)

    keep = set(protected)
    for snap in snapshots:
        if len(keep) >= defaults.snapshotRetentionCount:
            break
        keep.add(snap["SnapshotId"])
    deleted, skipped = [], []
    for snap in snapshots:
        snapshot_id = snap["SnapshotId"]
        if snapshot_id in keep or snap["State"] == "pending":
            continue
        try:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
            deleted.append(snapshot_id)
        except ClientError as exc:
            if error_code(exc) == "InvalidSnapshot.InUse":  # e.g. registered as an AMI by someone
                skipped.append(snapshot_id)
                continue
            raise translate(exc) from exc
    return {"kept": sorted(keep), "deleted": deleted, "skipped": skipped, "published": current, "rollbackTarget": previous}
