"""State ResolveInput: validate the input, fill defaults, resolve digests and the Bottlerocket AMI."""

from typing import Any

from ..core import clients, image_config, registry_probe
from ..core.defaults import PipelineDefaults
from ..core.observability import account_region, logger, step
from ..steps.resolve_input import execution_of, resolve_input

# Tests and the rehearsal replace this to avoid network access for images outside ECR.
anonymous_probe = registry_probe.anonymous_pull_problem
# ... and this to serve image config blobs (ECR's pre-signed layer URLs) without network.
fetch_layer = image_config.urllib_fetch


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    account, region = account_region(context)
    plan = resolve_input(
        event, PipelineDefaults.from_env(), ecr=clients.client("ecr"), ssm=clients.client("ssm"),
        account=account, region=region, probe=lambda *args: anonymous_probe(*args), fetch=lambda url: fetch_layer(url),
    )
    for verdict in plan.cuda:
        if verdict.status != "compatible":
            logger.warning("CUDA gate could not decide", extra={"cuda": verdict.to_dict()})
    logger.info("build planned", extra={"images": [i.pinned for i in plan.images], "platforms": list(plan.platforms),
                                        "bottlerocketVersion": plan.bottlerocket_version, "trigger": plan.trigger})
    # The working state from here on: $.plan and $.execution (ResolveInput's result_path is "$").
    return {"plan": plan.to_state(), "execution": execution_of(event)}
