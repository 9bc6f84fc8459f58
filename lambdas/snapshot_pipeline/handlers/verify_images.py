"""State VerifyImages: parse the script's verification lines; every image, digest, platform and pin must be there."""

from typing import Any

from ..build_plan import BuildPlan
from ..core import clients
from ..core.observability import logger, step
from ..steps import pull


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = pull.verify(clients.client("ssm"), command_id=event["commandId"], instance_id=event["instanceId"],
                         plan=BuildPlan.from_state(event["plan"]))
    logger.info("images verified", extra=result)
    return result
