"""State VerifyImages: parse the script's verification lines; every image, digest, platform and pin must be there."""

from typing import Any

from .. import clients, pull
from ..observability import logger, step


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = pull.verify(clients.client("ssm"), command_id=event["commandId"], instance_id=event["instanceId"], plan=event["plan"])
    logger.info("images verified", extra=result)
    return result
