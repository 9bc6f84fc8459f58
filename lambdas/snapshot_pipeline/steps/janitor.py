"""Janitor: an execution that ABORTED, TIMED_OUT or FAILED may not have cleaned up after itself.

Invoked by EventBridge ("Step Functions Execution Status Change") with the ended execution in
``detail``. Runs the same cleanup as the state machine for that execution (``cleanup``); raises
CleanupIncomplete while anything is left so Lambda's asynchronous retries come back after the
builder has finished terminating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.defaults import PipelineDefaults
from ..core.errors import CleanupIncomplete, InputValidationError
from .cleanup import cleanup_execution


@dataclass(frozen=True)
class Sweep:
    execution_arn: str
    status: Any  # the execution's final status from the event (ABORTED, TIMED_OUT, FAILED)
    result: dict[str, Any]  # cleanup_execution's round

    @property
    def removed(self) -> int:
        return len(self.result["terminated"]) + len(self.result["deletedVolumes"]) + len(self.result["deletedSnapshots"])

    def require_done(self) -> None:
        """Raise CleanupIncomplete while anything of the execution is left (after it was logged and counted)."""
        if not self.result["done"]:
            raise CleanupIncomplete(f"still present for {self.execution_arn}: {self.result['remaining']}; retried by Lambda's async retry")


def sweep(ec2: Any, ssm: Any, *, event: dict[str, Any], defaults: PipelineDefaults) -> Sweep:
    """One cleanup round for the execution the EventBridge event names; InputValidationError without one."""
    detail = event.get("detail") or {}
    execution_arn = detail.get("executionArn")
    if not execution_arn:
        raise InputValidationError(f"janitor: event has no detail.executionArn: {event!r}")
    result = cleanup_execution(ec2, ssm, execution_arn=execution_arn, defaults=defaults)
    return Sweep(execution_arn=execution_arn, status=detail.get("status"), result=result)
