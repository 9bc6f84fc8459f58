"""State CheckBuilderStopped."""

from typing import Any

from ..core import clients
from ..core.observability import step
from ..steps import builder


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return builder.check_stopped(clients.client("ec2"), event["instanceId"])
