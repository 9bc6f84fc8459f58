"""State Publish: metadata, then the snapshot ID; Fast Snapshot Restore on the new snapshot, off on the old."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .. import clients
from ..defaults import PipelineDefaults
from ..observability import logger, metrics, step
from ..publish import publish


def _report(problem: str, detail: str) -> None:
    logger.warning("publish: non-fatal problem", extra={"problem": problem, "detail": detail})
    metrics.add_metric(name=problem, unit=MetricUnit.Count, value=1)


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = publish(clients.client("ssm"), clients.client("ec2"), plan=event["plan"], snapshot=event["snapshot"],
                     execution_arn=event["execution"]["executionArn"], defaults=PipelineDefaults.from_env(), report=_report)
    metrics.add_metric(name="SnapshotPublished", unit=MetricUnit.Count, value=1)
    logger.info("snapshot published", extra=result)
    return result
