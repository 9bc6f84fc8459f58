"""State CreateSnapshot: snapshot /dev/xvdb with the images, digests and versions as tags."""

from typing import Any

from .. import clients, snapshot
from ..defaults import PipelineDefaults
from ..observability import logger, step


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = snapshot.create(clients.client("ec2"), instance_id=event["instanceId"], plan=event["plan"],
                             execution_arn=event["execution"]["executionArn"], pipeline=PipelineDefaults.from_env().pipelineName)
    logger.info("snapshot started", extra=result)
    return result
