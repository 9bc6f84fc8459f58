"""State CheckBuilderStopped."""

from typing import Any

from .. import builder, clients
from ..observability import step


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return builder.check_stopped(clients.client("ec2"), event["instanceId"])
