"""State LaunchBuilder: one Bottlerocket instance in a private subnet, tagged with the execution."""

import os
from typing import Any

from settings import names

from ..build_plan import BuildPlan
from ..core import clients
from ..core.defaults import PipelineDefaults
from ..core.observability import logger, step
from ..steps import builder


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = builder.launch(
        clients.client("ec2"), plan=BuildPlan.from_state(event["plan"]), execution_arn=event["execution"]["executionArn"],
        defaults=PipelineDefaults.from_env(),
        subnet_ids=[s for s in os.environ[names.ENV_BUILDER_SUBNET_IDS].split(",") if s],
        security_group_id=os.environ[names.ENV_BUILDER_SECURITY_GROUP_ID],
        instance_profile_arn=os.environ[names.ENV_BUILDER_INSTANCE_PROFILE_ARN],
    )
    logger.info("builder launched", extra=result)
    return result
