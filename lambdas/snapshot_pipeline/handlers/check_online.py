"""State CheckBuilderOnline: has the SSM agent on the builder registered (PingStatus Online)?"""

from typing import Any

from ..core import clients
from ..core.observability import step
from ..steps import builder


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return builder.check_online(clients.client("ec2"), clients.client("ssm"), event["instanceId"])
