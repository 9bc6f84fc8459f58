"""State CheckSnapshot: completed, still pending, or error (raises SnapshotFailed)."""

from typing import Any

from ..core import clients
from ..core.observability import step
from ..steps import snapshot


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return snapshot.check(clients.client("ec2"), event["snapshotId"])
