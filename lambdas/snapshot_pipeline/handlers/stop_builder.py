"""State StopBuilder: stop the builder so the data volume is consistent for the snapshot."""

from typing import Any

from ..core import clients
from ..core.observability import step
from ..steps import builder


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    builder.stop(clients.client("ec2"), event["instanceId"])
    return {"stopping": event["instanceId"]}
