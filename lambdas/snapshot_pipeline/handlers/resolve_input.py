"""State ResolveInput: validate the input, fill defaults, resolve digests and the Bottlerocket AMI."""

from typing import Any

from .. import clients, registry_probe
from ..defaults import PipelineDefaults
from ..observability import account_region, logger, step
from ..resolve import resolve_input

# Tests and the rehearsal replace this to avoid network access for images outside ECR.
anonymous_probe = registry_probe.anonymous_pull_problem


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    account, region = account_region(context)
    state = resolve_input(
        event, PipelineDefaults.from_env(), ecr=clients.client("ecr"), ssm=clients.client("ssm"),
        account=account, region=region, probe=lambda *args: anonymous_probe(*args),
    )
    plan = state["plan"]
    logger.info("build planned", extra={"images": [i["pinned"] for i in plan["images"]], "platforms": plan["platforms"],
                                        "bottlerocketVersion": plan["bottlerocketVersion"], "trigger": plan["trigger"]})
    return state
