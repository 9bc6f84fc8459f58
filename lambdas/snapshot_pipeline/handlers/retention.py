"""State Retention: delete old pipeline snapshots beyond the retention count (never published/rollback)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .. import clients
from ..defaults import PipelineDefaults
from ..observability import logger, metrics, step
from ..retention import apply_retention


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = apply_retention(clients.client("ec2"), clients.client("ssm"), defaults=PipelineDefaults.from_env())
    metrics.add_metric(name="SnapshotsExpired", unit=MetricUnit.Count, value=len(result["deleted"]))
    logger.info("retention applied", extra=result)
    return result
