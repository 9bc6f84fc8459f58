"""State StartPull: run the pipeline's pull document on the builder (no credentials in the command)."""

from typing import Any

from ..build_plan import BuildPlan
from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import logger, step
from ..steps import builder, pull


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    defaults = PipelineDefaults.from_env()
    # the volume the pipeline will snapshot: the script refuses to pull unless containerd's root is on it
    data_volume_id = builder.data_volume_id(clients.client("ec2"), event["instanceId"])
    result = pull.start(clients.client("ssm"), data_volume_id=data_volume_id, instance_id=event["instanceId"],
                        plan=BuildPlan.from_state(event["plan"]), execution_arn=event["execution"]["executionArn"],
                        pull_timeout_seconds=defaults.pullTimeoutSeconds, document_name=defaults.pull_document_name)
    logger.info("pull command sent", extra=result)
    return result
