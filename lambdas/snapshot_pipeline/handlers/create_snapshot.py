"""State CreateSnapshot: snapshot /dev/xvdb with the images, digests and versions as tags."""

from typing import Any

from ..build_plan import BuildPlan
from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import logger, step
from ..steps import snapshot


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = snapshot.create(clients.client("ec2"), instance_id=event["instanceId"], plan=BuildPlan.from_state(event["plan"]),
                             execution_arn=event["execution"]["executionArn"], pipeline=PipelineDefaults.from_env().pipelineName)
    logger.info("snapshot started", extra=result)
    return result
