"""The CUDA an image needs, read from its config by digest through the ECR API (no registry credential).

``BatchGetImage`` returns the manifest (an index is followed to the builder platform's manifest),
``GetDownloadUrlForLayer`` a pre-signed URL for the config blob it references. NVIDIA's CUDA base
images, which vLLM's image is built on, declare what the driver must support in the config's
environment: ``NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=...`` and ``CUDA_VERSION=12.8.1``
(gitlab.com/nvidia/container-images/cuda Dockerfiles); the NVIDIA container runtime refuses to start a
container whose ``cuda>=`` requirement the node's driver does not meet.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from settings import versions

from .aws_errors import error_code, translate
from .errors import InputValidationError

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_REQUIRE = re.compile(r"(?:^|\s)cuda>=(\d+\.\d+)")
_VERSION = re.compile(r"(\d+)\.(\d+)")

# (pre-signed URL) -> bytes. The resolve Lambda has internet egress (no VPC); tests and the rehearsal
# replace it (the emulator serves the blobs the test pushed).
Fetch = Callable[[str], bytes]


def urllib_fetch(url: str) -> bytes:
    import urllib.request  # here, not at the top: it costs more than the rest of the handler's import

    if not url.startswith("https://"):
        raise ValueError(f"refusing a non-https layer URL: {url[:60]}")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - https only, checked above
        data = response.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"image config larger than {MAX_CONFIG_BYTES} bytes")
    return bytes(data)


@dataclass(frozen=True)
class CudaRequirement:
    version: str | None  # "12.8"; None: the image declares none
    source: str  # which variable said so, or why it is unknown
    expression: str = ""  # the whole NVIDIA_REQUIRE_CUDA value (space = OR, comma = AND), evaluated by cuda_gate
    disabled: bool = False  # NVIDIA_DISABLE_REQUIRE is set: the runtime checks nothing


# One parser for "<major>.<minor>" versions, CUDA's included.
parse_version = versions.minor


def cuda_requirement(env: list[str]) -> CudaRequirement:
    """The CUDA the image needs from its config ``Env``: NVIDIA_REQUIRE_CUDA's ``cuda>=``, else CUDA_VERSION."""
    variables = dict(item.split("=", 1) for item in env if "=" in item)
    disabled = variables.get("NVIDIA_DISABLE_REQUIRE", "").lower() in ("1", "true", "yes")
    require = variables.get("NVIDIA_REQUIRE_CUDA", "").strip()
    m = _REQUIRE.search(require)
    if m:
        return CudaRequirement(m[1], f"NVIDIA_REQUIRE_CUDA={require.split()[0]}", require, disabled)
    if "CUDA_VERSION" in variables and _VERSION.match(variables["CUDA_VERSION"]):
        major, minor = parse_version(variables["CUDA_VERSION"])
        return CudaRequirement(f"{major}.{minor}", f"CUDA_VERSION={variables['CUDA_VERSION']}", require, disabled)
    return CudaRequirement(None, "the image config sets neither NVIDIA_REQUIRE_CUDA nor CUDA_VERSION", require, disabled)


def _manifest(ecr: Any, repository: str, digest: str, field: str) -> dict[str, Any]:
    try:
        response = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}],
                                       acceptedMediaTypes=[*INDEX_TYPES, *MANIFEST_TYPES])
    except ClientError as exc:
        raise translate(exc) from exc
    images = response.get("images") or []
    if not images:
        reason = (response.get("failures") or [{}])[0].get("failureReason", "not found")
        raise InputValidationError(f"{field}: {repository}@{digest} cannot be read from ECR ({reason})")
    return dict(json.loads(images[0]["imageManifest"]))


def image_env(ecr: Any, *, repository: str, digest: str, arch: str, field: str, fetch: Fetch) -> list[str]:
    """The config ``Env`` of ``repository@digest`` for linux/``arch`` (following an index)."""
    manifest = _manifest(ecr, repository, digest, field)
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        entries = [m for m in manifest.get("manifests", [])
                   if m.get("platform", {}).get("os") == "linux" and m.get("platform", {}).get("architecture") == arch]
        if not entries:
            raise InputValidationError(f"{field}: {repository}@{digest} has no linux/{arch} image in its index")
        manifest = _manifest(ecr, repository, entries[0]["digest"], field)
    config_digest = manifest.get("config", {}).get("digest")
    if not config_digest:
        raise InputValidationError(f"{field}: {repository}@{digest} has a manifest without a config")
    try:
        url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=config_digest)["downloadUrl"]
    except ClientError as exc:
        if error_code(exc) in ("LayersNotFoundException", "LayerInaccessibleException"):
            raise InputValidationError(f"{field}: the config {config_digest} of {repository}@{digest} is not in ECR") from exc
        raise translate(exc) from exc
    blob = fetch(url)
    if "sha256:" + hashlib.sha256(blob).hexdigest() != config_digest:
        raise InputValidationError(f"{field}: the config blob of {repository}@{digest} does not match its digest {config_digest}")
    config = json.loads(blob)
    return list(config.get("config", {}).get("Env") or [])
