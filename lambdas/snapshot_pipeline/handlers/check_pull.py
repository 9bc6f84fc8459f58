"""State CheckPull: the pull command's status; every terminal failure raises PullCommandFailed."""

from typing import Any

from ..core import clients
from ..core.observability import step
from ..steps import pull


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return pull.check(clients.client("ssm"), command_id=event["commandId"], instance_id=event["instanceId"])
