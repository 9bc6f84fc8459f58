"""Janitor: an execution that ABORTED, TIMED_OUT or FAILED may not have cleaned up after itself.

Invoked by EventBridge ("Step Functions Execution Status Change"). Runs the same cleanup as the
state machine for that execution; raises CleanupIncomplete while anything is left so Lambda's
asynchronous retries come back after the builder has finished terminating.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .. import clients
from ..cleanup import cleanup_execution
from ..defaults import PipelineDefaults
from ..errors import CleanupIncomplete, InputValidationError
from ..observability import logger, metrics, step


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") or {}
    execution_arn = detail.get("executionArn")
    if not execution_arn:
        raise InputValidationError(f"janitor: event has no detail.executionArn: {event!r}")
    result = cleanup_execution(clients.client("ec2"), clients.client("ssm"), execution_arn=execution_arn,
                               defaults=PipelineDefaults.from_env())
    removed = len(result["terminated"]) + len(result["deletedVolumes"]) + len(result["deletedSnapshots"])
    metrics.add_metric(name="JanitorResourcesRemoved", unit=MetricUnit.Count, value=removed)
    logger.info("janitor", extra={"executionArn": execution_arn, "status": detail.get("status"), **result})
    if not result["done"]:
        raise CleanupIncomplete(f"still present for {execution_arn}: {result['remaining']}; retried by Lambda's async retry")
    return result
