"""Safety under repeated triggers: one build at a time, bursts collapse, published builds are no-ops.

Decision order for an execution:
1. an ECR-triggered run exits "superseded" when a NEWER running execution of the same state
   machine is also an ECR push of the same repository (the newer one builds the newer push). A
   newer manual or scheduled run does not supersede it: that run builds its own images (or ends
   "published"), and the pushed digest would never be built;
2. a build identical to the published one (same digests, platforms, Kubernetes and Bottlerocket
   versions; see ``build_plan.build_key``) exits "published" unless the input says ``force: true``;
   A SCHEDULED run also exits "published" (``hold: rollback``) while the published metadata marks
   an operator rollback: the schedule would otherwise rebuild the rolled-away image within a day
   and undo the rollback. Pushes, console runs and ``force`` still build;
3. while an OLDER execution is running, "wait" (the state machine loops with a bounded count);
4. otherwise "proceed". Only the oldest running execution ever proceeds, so at most one builds.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from settings import names, parameter_store

from ..build_plan import BuildPlan, build_key
from ..core.defaults import PipelineDefaults
from .resolve_input import trigger_of

PROCEED = "proceed"
WAIT = "wait"
SUPERSEDED = "superseded"
PUBLISHED = "published"


def decide(sfn: Any, ssm: Any, *, plan: BuildPlan, execution: dict[str, Any], defaults: PipelineDefaults) -> dict[str, Any]:
    me = execution["executionArn"]
    running = _running(sfn, execution["stateMachineArn"])
    my_start = running.get(me) or _parse_time(execution.get("startTime"))
    newer = sorted(arn for arn, start in running.items() if arn != me and (start, arn) > (my_start, me))
    older = sorted(arn for arn, start in running.items() if arn != me and (start, arn) < (my_start, me))

    if plan.trigger == names.TRIGGER_ECR:
        pushes = [arn for arn in newer if _is_push_of(sfn, arn, defaults.vllmRepository)]
        if pushes:
            return {"decision": SUPERSEDED, "by": pushes[-1]}
    if not plan.force:
        published = published_build(ssm, defaults)
        if published is not None and published["buildKey"] == plan.build_key:
            return {"decision": PUBLISHED, "snapshotId": published["snapshotId"]}
        if published is not None and published["rollback"] and plan.trigger == names.TRIGGER_SCHEDULE:
            return {"decision": PUBLISHED, "snapshotId": published["snapshotId"], "hold": "rollback"}
    if older:
        return {"decision": WAIT, "waitingFor": older[0]}
    return {"decision": PROCEED}


def published_build(ssm: Any, defaults: PipelineDefaults) -> dict[str, Any] | None:
    """The published snapshot ID, the build key of its metadata and whether it is an operator
    rollback; None if nothing (consistent) is published."""
    snapshot_id = parameter_store.get(ssm, defaults.snapshotParameterName)
    raw = parameter_store.get(ssm, defaults.metadata_parameter_name)
    if snapshot_id is None or raw is None:
        return None
    try:
        metadata = json.loads(raw)
        key = build_key(metadata)
    except (ValueError, KeyError, TypeError):
        return None  # unreadable metadata: rebuild rather than trust it
    if metadata.get("snapshotId") != snapshot_id:
        return None  # stale metadata (a publish failed between the two writes): the ID wins, rebuild
    return {"snapshotId": snapshot_id, "buildKey": key,
            "rollback": isinstance(metadata.get(names.METADATA_ROLLBACK_KEY), dict)}


def _is_push_of(sfn: Any, execution_arn: str, repository: str) -> bool:
    """Is that execution an ECR-push run of ``repository`` (by its input, read like resolve reads it)?"""
    try:
        user_input = json.loads(sfn.describe_execution(executionArn=execution_arn).get("input") or "{}")
    except ValueError:
        return False  # unreadable input fails its own ResolveInput; it builds nothing
    if not isinstance(user_input, dict):
        return False
    return bool(trigger_of(user_input) == names.TRIGGER_ECR and user_input.get("repositoryName", repository) == repository)


def _running(sfn: Any, state_machine_arn: str) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        for item in page["executions"]:
            out[item["executionArn"]] = _parse_time(item["startDate"])
    return out


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise ValueError(f"execution start time missing or unreadable: {value!r}")
