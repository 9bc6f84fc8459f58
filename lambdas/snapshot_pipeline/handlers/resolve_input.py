"""State ResolveInput: validate the input, fill defaults, resolve digests and the Bottlerocket AMI."""

from typing import Any

from .. import clients, image_config, registry_probe
from ..defaults import PipelineDefaults
from ..observability import account_region, logger, step
from ..resolve import resolve_input

# Tests and the rehearsal replace this to avoid network access for images outside ECR.
anonymous_probe = registry_probe.anonymous_pull_problem
# ... and this to serve image config blobs (ECR's pre-signed layer URLs) without network.
fetch_layer = image_config.urllib_fetch


@step
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    account, region = account_region(context)
    state = resolve_input(
        event, PipelineDefaults.from_env(), ecr=clients.client("ecr"), ssm=clients.client("ssm"),
        account=account, region=region, probe=lambda *args: anonymous_probe(*args), fetch=lambda url: fetch_layer(url),
    )
    plan = state["plan"]
    for verdict in plan["cuda"]:
        if verdict["status"] != "compatible":
            logger.warning("CUDA gate could not decide", extra={"cuda": verdict})
    logger.info("build planned", extra={"images": [i["pinned"] for i in plan["images"]], "platforms": plan["platforms"],
                                        "bottlerocketVersion": plan["bottlerocketVersion"], "trigger": plan["trigger"]})
    return state
