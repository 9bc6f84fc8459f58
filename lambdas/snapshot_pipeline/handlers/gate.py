"""State CheckGate: one build at a time; superseded and already-published runs end early."""

from typing import Any

from ..build_plan import BuildPlan
from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import logger, step
from ..steps.gate import decide


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    decision = decide(clients.client("stepfunctions"), clients.client("ssm"), plan=BuildPlan.from_state(event["plan"]),
                      execution=event["execution"], defaults=PipelineDefaults.from_env())
    logger.info("gate decision", extra=decision)
    return decision
