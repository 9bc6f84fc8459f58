"""State Publish: metadata, then the snapshot ID; Fast Snapshot Restore on the new snapshot, off on the old."""

from typing import Any

from ..build_plan import BuildPlan
from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import MetricUnit, logger, metrics, step
from ..steps.publish import publish


def _report(problem: str, detail: str) -> None:
    logger.warning("publish: non-fatal problem", extra={"problem": problem, "detail": detail})
    metrics.add_metric(name=problem, unit=MetricUnit.Count, value=1)


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = publish(clients.client("ssm"), clients.client("ec2"), plan=BuildPlan.from_state(event["plan"]), snapshot=event["snapshot"],
                     execution_arn=event["execution"]["executionArn"], defaults=PipelineDefaults.from_env(), report=_report)
    metrics.add_metric(name="SnapshotPublished", unit=MetricUnit.Count, value=1)
    logger.info("snapshot published", extra=result)
    return result
