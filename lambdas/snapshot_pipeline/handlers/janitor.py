"""Janitor (EventBridge, not a state): clean up after an execution that ended without its own cleanup."""

from typing import Any

from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import MetricUnit, logger, metrics, step
from ..steps import janitor


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    swept = janitor.sweep(clients.client("ec2"), clients.client("ssm"), event=event, defaults=PipelineDefaults.from_env())
    metrics.add_metric(name="JanitorResourcesRemoved", unit=MetricUnit.Count, value=swept.removed)
    logger.info("janitor", extra={"executionArn": swept.execution_arn, "status": swept.status, **swept.result})
    swept.require_done()
    return swept.result
