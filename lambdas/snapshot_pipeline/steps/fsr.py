"""Fast Snapshot Restore: volumes restored from the snapshot are fully initialised at creation.

Billed per snapshot per AZ per hour while enabled ($0.75/h/AZ), so a superseded snapshot must have
it disabled. Publish and the operator CLI's rollback share these functions.
"""

from __future__ import annotations

from typing import Any

ENABLED_STATES = frozenset({"enabling", "optimizing", "enabled"})


def enable_fsr(ec2: Any, snapshot_id: str, azs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Enable FSR in ``azs``; returns {"states": {az: state}, "errors": {az: "Code: message"}}."""
    if not azs:
        return {"states": {}, "errors": {}}
    response = ec2.enable_fast_snapshot_restores(AvailabilityZones=list(azs), SourceSnapshotIds=[snapshot_id])
    return _outcome(response)


def disable_fsr(ec2: Any, snapshot_id: str, azs: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Disable FSR on ``snapshot_id`` in ``azs`` (default: every AZ where it is currently on)."""
    zones = list(azs) if azs is not None else [az for az, state in fsr_states(ec2, snapshot_id).items() if state in ENABLED_STATES]
    if not zones:
        return {"states": {}, "errors": {}}
    response = ec2.disable_fast_snapshot_restores(AvailabilityZones=zones, SourceSnapshotIds=[snapshot_id])
    return _outcome(response)


def fsr_states(ec2: Any, snapshot_id: str) -> dict[str, str]:
    """{az: state} of FSR for one snapshot (absent AZs have it off)."""
    states: dict[str, str] = {}
    for page in ec2.get_paginator("describe_fast_snapshot_restores").paginate(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}]):
        for item in page.get("FastSnapshotRestores", []):
            states[item["AvailabilityZone"]] = item["State"]
    return states


def _outcome(response: dict[str, Any]) -> dict[str, Any]:
    states = {item["AvailabilityZone"]: item["State"] for item in response.get("Successful", [])}
    errors = {}
    for item in response.get("Unsuccessful", []):
        for err in item.get("FastSnapshotRestoreStateErrors", []):
            errors[err["AvailabilityZone"]] = f"{err['Error'].get('Code')}: {err['Error'].get('Message')}"
    return {"states": states, "errors": errors}
