"""First state: validate the execution input, fill defaults from the stack config, resolve digests and the AMI.

Everything that can be wrong with an input is caught here, before anything is launched. The
result (the "plan") is the only description of the build the later steps use.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from settings import names

from ..build_plan import BuildPlan, PlannedImage
from ..core import cuda_gate, image_config, images
from ..core.aws_errors import error_code, translate
from ..core.defaults import PipelineDefaults
from ..core.errors import InputValidationError

K8S_VERSION = re.compile(r"1\.\d{2}")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
BOTTLEROCKET_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)(?:[-+].*)?")
PLATFORMS = tuple(names.PLATFORM_TO_ARCH)
BUILDER_ARCH = "x86_64"  # the builder instance type is x86_64 (config: builderInstanceType)
EXECUTION_KEYS = ("executionArn", "stateMachineArn", "startTime")


def _fail(field: str, value: Any, fix: str) -> InputValidationError:
    return InputValidationError(f"input.{field}: invalid value {value!r}; {fix}")


def resolve_input(
    event: dict[str, Any],
    defaults: PipelineDefaults,
    *,
    ecr: Any,
    ssm: Any,
    account: str,
    region: str,
    probe: images.AnonymousProbe,
    fetch: image_config.Fetch,
) -> BuildPlan:
    """The build plan for the execution input ``event["input"]``, or InputValidationError."""
    raw = event.get("input")
    user_input: dict[str, Any] = {} if raw is None else raw
    if not isinstance(user_input, dict):
        raise InputValidationError(f"input: expected a JSON object such as {{}}, got {raw!r}")
    unknown = sorted(set(user_input) - set(names.INPUT_KEYS))
    if unknown:
        raise InputValidationError(f"input.{unknown[0]}: unknown key; allowed keys: {', '.join(names.INPUT_KEYS)} ({{}} uses the stack defaults)")

    force = user_input.get("force", False)
    if not isinstance(force, bool):
        raise _fail("force", force, "expected true or false")

    trigger = trigger_of(user_input)
    if trigger not in (names.TRIGGER_ECR, names.TRIGGER_SCHEDULE, names.TRIGGER_MANUAL):
        raise _fail("trigger", trigger, f"expected one of {names.TRIGGER_ECR}, {names.TRIGGER_SCHEDULE}, {names.TRIGGER_MANUAL}")

    platforms = _platforms(user_input.get("platforms", list(defaults.imagePlatforms)))
    kubernetes_version = user_input.get("kubernetesVersion", defaults.kubernetesVersion)
    if not isinstance(kubernetes_version, str) or not K8S_VERSION.fullmatch(kubernetes_version):
        raise _fail("kubernetesVersion", kubernetes_version, "expected a Kubernetes minor version such as 1.33")

    references = _references(user_input, defaults, account=account, region=region)
    resolved = []
    for field, reference in references:
        ref = images.parse(reference, field)
        resolved.append(PlannedImage(**images.resolve(ref, field=field, reference=reference, ecr=ecr, account=account, region=region,
                                                      probe=probe)))
    pinned = [image.pinned for image in resolved]
    if len(set(pinned)) != len(pinned):
        raise InputValidationError(f"input.images: {references!r} name the same image twice ({sorted(pinned)}); list each image once")

    ami_id, bottlerocket_version = _bottlerocket(ssm, kubernetes_version)
    # Before anything is launched: would the GPU nodes' NVIDIA driver start the vLLM image at all?
    cuda = _cuda_gate(resolved, platforms, defaults, ecr=ecr, account=account, region=region, fetch=fetch,
                      bottlerocket_version=bottlerocket_version, kubernetes_version=kubernetes_version)
    return BuildPlan(
        images=tuple(resolved),
        platforms=tuple(platforms),
        kubernetes_version=kubernetes_version,
        ami_id=ami_id,
        bottlerocket_version=bottlerocket_version,
        force=force,
        trigger=trigger,
        debounce_seconds=defaults.triggerDebounceSeconds if trigger == names.TRIGGER_ECR else 0,
        poll_interval_seconds=defaults.pollIntervalSeconds,
        max_polls=defaults.maxPolls,
        command_max_polls=defaults.command_max_polls,
        gate_max_polls=defaults.gate_max_polls,
        cuda=tuple(cuda),
    )


def execution_of(event: dict[str, Any]) -> dict[str, Any]:
    """The execution's identity, as ResolveInput's payload carries it (``$.execution`` from then on)."""
    return {k: event.get(k) for k in EXECUTION_KEYS}


def trigger_of(user_input: dict[str, Any]) -> Any:
    """The execution input's trigger: explicit, else ``ecr`` for a push event's fields, else ``manual``."""
    return user_input.get("trigger") or (names.TRIGGER_ECR if "imageDigest" in user_input else names.TRIGGER_MANUAL)


def _platforms(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _fail("platforms", value, f"expected a non-empty list drawn from {list(PLATFORMS)}")
    for platform in value:
        if platform not in PLATFORMS:
            raise _fail("platforms", value, f"unknown platform {platform!r}; allowed: {', '.join(PLATFORMS)}")
    if len(set(value)) != len(value):
        raise _fail("platforms", value, "list each platform once")
    return list(value)


def _references(user_input: dict[str, Any], defaults: PipelineDefaults, *, account: str, region: str) -> list[tuple[str, str]]:
    """(field, reference) pairs: the input's images, or the configured vLLM image plus extraImages."""
    has_event_fields = any(k in user_input for k in ("imageDigest", "imageTag", "repositoryName"))
    if "images" in user_input:
        if has_event_fields:
            raise InputValidationError("input.images: give either images or imageDigest/imageTag/repositoryName (an ECR push), not both")
        value = user_input["images"]
        if not isinstance(value, list) or not value:
            raise _fail("images", value, "expected a non-empty list of image references")
        return [(f"input.images[{i}]", reference) for i, reference in enumerate(value)]

    repository = user_input.get("repositoryName", defaults.vllmRepository)
    if repository != defaults.vllmRepository:
        raise _fail("repositoryName", repository, f"this pipeline builds from the configured vllmRepository {defaults.vllmRepository!r}")
    tag = user_input.get("imageTag", defaults.vllmImageTag)
    if not isinstance(tag, str) or not TAG.fullmatch(tag):
        raise _fail("imageTag", tag, "expected an image tag such as v0.11.0")
    digest = user_input.get("imageDigest")
    if digest is not None and (not isinstance(digest, str) or not images.DIGEST.fullmatch(digest)):
        raise _fail("imageDigest", digest, "expected sha256:<64 lowercase hex>")
    vllm = f"{images.private_ecr_registry(account, region)}/{repository}:{tag}" + (f"@{digest}" if digest else "")
    field = "input.imageDigest" if digest else "input.imageTag"
    return [(field, vllm)] + [(f"config.extraImages[{i}]", ref) for i, ref in enumerate(defaults.extraImages)]


def _cuda_gate(resolved: list[PlannedImage], platforms: list[str], defaults: PipelineDefaults, *, ecr: Any, account: str,
               region: str, fetch: image_config.Fetch, bottlerocket_version: str, kubernetes_version: str) -> list[cuda_gate.Verdict]:
    """The CUDA verdict of each vLLM image (this account's ECR repository ``vllmRepository``) per platform;
    raises CudaDriverIncompatible for an image the nodes' driver cannot run."""
    verdicts = []
    for image in resolved:
        ref = images.parse(image.reference, "image")
        if ref.repository != defaults.vllmRepository or ref.ecr_account_region != (account, region):
            continue
        for platform in platforms:
            env = image_config.image_env(ecr, repository=ref.repository, digest=image.digest, arch=platform,
                                         field=f"image {image.pinned}", fetch=fetch)
            verdict = cuda_gate.check(image_config.cuda_requirement(env), bottlerocket_version=bottlerocket_version,
                                      kubernetes_version=kubernetes_version, image=f"{image.pinned} (linux/{platform})", arch=platform)
            verdicts.append(cuda_gate.enforce(verdict))
    return verdicts


def _bottlerocket(ssm: Any, kubernetes_version: str) -> tuple[str, str]:
    id_name = names.bottlerocket_ami_parameter(kubernetes_version, BUILDER_ARCH)
    version_name = names.bottlerocket_version_parameter(kubernetes_version, BUILDER_ARCH)
    try:
        ami_id = ssm.get_parameter(Name=id_name)["Parameter"]["Value"]
        raw_version = ssm.get_parameter(Name=version_name)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            raise InputValidationError(
                f"input.kubernetesVersion: {kubernetes_version!r} has no Bottlerocket AMI (public parameter {id_name} not found); "
                "use a Kubernetes version Bottlerocket publishes (see the aws-k8s-<version> variants), such as the cluster's version"
            ) from exc
        raise translate(exc) from exc
    m = BOTTLEROCKET_VERSION.fullmatch(raw_version)
    if not m:
        raise InputValidationError(f"{version_name}: unexpected Bottlerocket version {raw_version!r}; expected 1.x.y")
    return ami_id, m[1]
