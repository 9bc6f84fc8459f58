"""Publish: the metadata parameter first, then the snapshot ID parameter (the contract's last write)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from settings import parameter_store

from ..build_plan import BuildPlan
from ..core.defaults import PipelineDefaults
from .fsr import disable_fsr, enable_fsr

# (problem, detail) -> None: how publish reports non-fatal FSR problems (log + metric in the handler).
Report = Callable[[str, str], None]


def metadata_document(*, plan: BuildPlan, snapshot: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    return {
        "snapshotId": snapshot["snapshotId"],
        "bottlerocketVersion": plan.bottlerocket_version,
        "kubernetesVersion": plan.kubernetes_version,
        "images": [{"reference": i.reference, "digest": i.digest, "pinned": i.pinned} for i in plan.images],
        "platforms": list(plan.platforms),
        # the first state's CUDA verdicts, short (the parameter holds 4 KB): doctor shows them
        "cuda": [{"status": v.status, "required": v.required, "driver": v.driver, "driverCuda": v.driverCuda} for v in plan.cuda],
        "executionArn": execution_arn,
        "createdAt": snapshot["createdAt"],
    }


def publish(
    ssm: Any, ec2: Any, *, plan: BuildPlan, snapshot: dict[str, Any], execution_arn: str, defaults: PipelineDefaults,
    report: Report,
) -> dict[str, Any]:
    snapshot_id = snapshot["snapshotId"]
    previous = parameter_store.get(ssm, defaults.snapshotParameterName)
    previous_metadata = parameter_store.get(ssm, defaults.metadata_parameter_name)
    metadata = metadata_document(plan=plan, snapshot=snapshot, execution_arn=execution_arn)
    # Metadata first: a reader that sees the new ID always finds matching metadata.
    write_metadata(ssm, defaults.metadata_parameter_name, json.dumps(metadata, separators=(",", ":")))
    try:
        parameter_store.put(ssm, defaults.snapshotParameterName, snapshot_id)
    except Exception:
        # The ID write failed: Cleanup will delete this snapshot, so the metadata must not keep
        # describing it (later identical triggers would rebuild instead of being no-ops). Put the
        # previous metadata back; then re-raise the ID write's error for the state machine's Retry.
        _restore_metadata(ssm, defaults.metadata_parameter_name, previous_metadata, report)
        raise

    result: dict[str, Any] = {"snapshotId": snapshot_id, "superseded": previous, "fsr": {}}
    if defaults.fastSnapshotRestoreAzs:
        try:
            outcome = enable_fsr(ec2, snapshot_id, defaults.fastSnapshotRestoreAzs)
            result["fsr"]["enabled"] = outcome
            if outcome["errors"]:
                report("FastSnapshotRestoreEnableFailed", json.dumps(outcome["errors"]))
        except Exception as exc:  # noqa: BLE001 - FSR is an optimisation; the publish stands without it
            result["fsr"]["enableError"] = f"{type(exc).__name__}: {exc}"
            report("FastSnapshotRestoreEnableFailed", str(exc))
    if previous and previous != snapshot_id:
        try:
            result["fsr"]["disabledOnSuperseded"] = disable_fsr(ec2, previous)
        except Exception as exc:  # noqa: BLE001 - reported; the operator can disable it by hand
            result["fsr"]["disableError"] = f"{type(exc).__name__}: {exc}"
            report("FastSnapshotRestoreDisableFailed", f"{previous}: {exc}")
    return result


def write_metadata(ssm: Any, name: str, value: str) -> None:
    # Intelligent-Tiering: Standard while under 4 KB, Advanced (up to 8 KB) for many images.
    parameter_store.put(ssm, name, value, tier="Intelligent-Tiering")


def _restore_metadata(ssm: Any, name: str, previous: str | None, report: Report) -> None:
    """Undo this run's metadata write: put the previous value back, or delete the parameter if there was none.

    Best effort: if this fails too, the metadata names a snapshot the parameter does not hold, which
    every reader already treats as stale (the ID wins); the next publish overwrites it.
    """
    try:
        if previous is None:
            ssm.delete_parameter(Name=name)  # it did not exist before this run: no history is lost
        else:
            write_metadata(ssm, name, previous)
    except Exception as exc:  # noqa: BLE001 - the ID write's error is the one the state machine must see
        report("MetadataRestoreFailed", f"{name}: {type(exc).__name__}: {exc}")
