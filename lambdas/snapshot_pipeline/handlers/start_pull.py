"""State StartPull: run the pipeline's pull document on the builder (no credentials in the command)."""

from typing import Any

from .. import clients, pull
from ..defaults import PipelineDefaults
from ..observability import logger, step


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    defaults = PipelineDefaults.from_env()
    result = pull.start(clients.client("ssm"), instance_id=event["instanceId"], plan=event["plan"],
                        execution_arn=event["execution"]["executionArn"], pull_timeout_seconds=defaults.pullTimeoutSeconds,
                        document_name=defaults.pull_document_name)
    logger.info("pull command sent", extra=result)
    return result
