"""Run the pipeline's pull document on the builder through SSM and read its outcome."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..build_plan import BuildPlan
from ..core import errors
from ..core.aws_errors import error_code, translate
from ..core.errors import ImageVerificationFailed, PullCommandFailed
from . import pull_script

RUNNING = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
SUCCESS = "Success"
# Every terminal failure SSM reports for a command invocation.
FAILED = frozenset({"Failed", "TimedOut", "Cancelled", "DeliveryTimedOut", "Undeliverable", "Terminated", "ExecutionTimedOut"})
# SSM's delivery timeout: how long the command may wait for the agent before DeliveryTimedOut.
DELIVERY_TIMEOUT_SECONDS = 600


# ctr's own messages (read from real containerd 2.1 in tests/real) -> the named error for a failed pull.
_PULL_CAUSES: tuple[tuple[tuple[str, ...], type[PullCommandFailed]], ...] = (
    (("401 Unauthorized", "403 Forbidden", "unauthorized", "denied"), errors.RegistryAuthFailed),
    (("connection refused", "no such host", "network is unreachable", "i/o timeout", "no route to host"), errors.RegistryUnreachable),
    ((": not found", " not found"), errors.ImageNotFound),
)
_NAMED: dict[str, type[PullCommandFailed]] = {cls.__name__: cls for cls in (
    errors.AdminContainerNotReady, errors.DataVolumeNotMounted, errors.EcrCredentialUnavailable, errors.ImagePullFailed)}


def failure_error(stdout: str) -> PullCommandFailed | None:
    """The named error for the script's ``COLDSTART-ERROR`` line (a pull refined by ctr's message), or None."""
    named = pull_script.named_failure(stdout)
    if named is None:
        return None
    name, message = named
    cls = _NAMED.get(name, PullCommandFailed)
    if cls is errors.ImagePullFailed:
        cls = next((c for needles, c in _PULL_CAUSES if any(n in message for n in needles)), cls)
    return cls(f"{name}: {message}"[:1500])


def start(ssm: Any, *, instance_id: str, plan: BuildPlan, execution_arn: str, pull_timeout_seconds: int,
          document_name: str, data_volume_id: str) -> dict[str, Any]:
    """Run the pipeline's pull document (fixed script) with the plan's images and platforms as its data parameters."""
    command = ssm.send_command(
        InstanceIds=[instance_id],
        DocumentName=document_name,
        Comment=f"vllm-coldstart image pull for {execution_arn.rsplit(':', 1)[-1]}"[:100],
        TimeoutSeconds=DELIVERY_TIMEOUT_SECONDS,
        Parameters={
            **pull_script.command_parameters(_images(plan), list(plan.platforms), data_volume_id),
            pull_script.EXECUTION_TIMEOUT: [str(pull_timeout_seconds)],
        },
    )["Command"]
    return {"commandId": command["CommandId"], "instanceId": instance_id, "dataVolumeId": data_volume_id}


def _invocation(ssm: Any, command_id: str, instance_id: str) -> dict[str, Any] | None:
    try:
        return ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except ClientError as exc:
        if error_code(exc) == "InvocationDoesNotExist":  # briefly true right after send_command
            return None
        raise translate(exc) from exc


def check(ssm: Any, *, command_id: str, instance_id: str) -> dict[str, Any]:
    """{"done": bool, "status": ...}; raises PullCommandFailed for every terminal failure."""
    invocation = _invocation(ssm, command_id, instance_id)
    if invocation is None:
        return {"done": False, "status": "Pending"}
    status = invocation["Status"]
    if status == SUCCESS:
        return {"done": True, "status": status}
    if status in RUNNING:
        return {"done": False, "status": status}
    named = failure_error(invocation.get("StandardOutputContent") or "")
    if named is not None:
        raise named
    detail = invocation.get("StatusDetails", status)
    stderr = (invocation.get("StandardErrorContent") or "").strip()[-800:]
    raise PullCommandFailed(
        f"pull command {command_id} on {instance_id} ended {status} ({detail})"
        + (f"; stderr tail: {stderr}" if stderr else "")
        + ("" if status in FAILED else " (unknown SSM status, treated as failed)")
    )


def verify(ssm: Any, *, command_id: str, instance_id: str, plan: BuildPlan) -> dict[str, Any]:
    invocation = _invocation(ssm, command_id, instance_id)
    output = (invocation or {}).get("StandardOutputContent") or ""
    problems = pull_script.verification_problems(output, _images(plan), list(plan.platforms))
    if problems:
        raise ImageVerificationFailed("images not verified on the builder: " + "; ".join(problems))
    return {"verified": [image.pinned for image in plan.images], "platforms": list(plan.platforms)}


def _images(plan: BuildPlan) -> list[dict[str, Any]]:
    """The plan's images as pull_script takes them (its dict form is shared with the emulator and tests/real)."""
    return [image.to_state() for image in plan.images]
