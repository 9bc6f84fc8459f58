"""State Cleanup: terminate the builder, delete its volumes and any unpublished snapshot of this execution."""

from typing import Any

from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import logger, step
from ..steps.cleanup import cleanup_execution


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = cleanup_execution(clients.client("ec2"), clients.client("ssm"), execution_arn=event["executionArn"],
                               defaults=PipelineDefaults.from_env())
    logger.info("cleanup round", extra=result)
    return result
