"""State Retention: delete old pipeline snapshots beyond the retention count (never published/rollback)."""

from typing import Any

from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import MetricUnit, logger, metrics, step
from ..steps.retention import apply_retention


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = apply_retention(clients.client("ec2"), clients.client("ssm"), defaults=PipelineDefaults.from_env())
    metrics.add_metric(name="SnapshotsExpired", unit=MetricUnit.Count, value=len(result["deleted"]))
    logger.info("retention applied", extra=result)
    return result
