"""State StartPull: send the pull script to the builder (no credentials in the command)."""

from typing import Any

from .. import clients, pull
from ..defaults import PipelineDefaults
from ..observability import logger, step


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = pull.start(clients.client("ssm"), instance_id=event["instanceId"], plan=event["plan"],
                        execution_arn=event["execution"]["executionArn"], pull_timeout_seconds=PipelineDefaults.from_env().pullTimeoutSeconds)
    logger.info("pull command sent", extra=result)
    return result
