"""State CheckGate: one build at a time; superseded and already-published runs end early."""

from typing import Any

from .. import clients
from ..defaults import PipelineDefaults
from ..gate import decide
from ..observability import logger, step


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    decision = decide(clients.client("stepfunctions"), clients.client("ssm"), plan=event["plan"], execution=event["execution"],
                      defaults=PipelineDefaults.from_env())
    logger.info("gate decision", extra=decision)
    return decision
