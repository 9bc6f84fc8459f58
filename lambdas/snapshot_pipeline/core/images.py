"""Image references: parse, classify (private ECR, public ECR, other) and resolve to digests.

Rules (each violation is an ``InputValidationError`` naming the input, the value and the fix):
- references are fully qualified: ``<registry>/<repository>[:tag][@sha256:<64 hex>]``;
- private ECR of this account and region may be given by tag: the tag resolves to a digest with
  ``ecr.describe_images``; a given digest is checked to exist;
- private ECR of another account or region, public.ecr.aws and any other registry must be pinned
  by digest (this pipeline cannot resolve their tags);
- an image outside ECR must be pullable anonymously (checked with ``registry_probe``), because the
  builder only has credentials for ECR.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .aws_errors import error_code, translate
from .errors import InputValidationError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    r"(?P<registry>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
    rf"/(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)
_PRIVATE_ECR = re.compile(r"(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
PUBLIC_ECR = "public.ecr.aws"
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")

KIND_PRIVATE_ECR = "ecr-private"
KIND_PUBLIC_ECR = "ecr-public"
KIND_OTHER = "other"

# (registry, repository, digest) -> None if anonymously pullable, else the reason it is not.
AnonymousProbe = Callable[[str, str, str], "str | None"]


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def kind(self) -> str:
        if _PRIVATE_ECR.fullmatch(self.registry):
            return KIND_PRIVATE_ECR
        if self.registry == PUBLIC_ECR:
            return KIND_PUBLIC_ECR
        return KIND_OTHER

    @property
    def ecr_account_region(self) -> tuple[str, str] | None:
        m = _PRIVATE_ECR.fullmatch(self.registry)
        return (m["account"], m["region"]) if m else None

    @property
    def name(self) -> str:
        """The reference without the digest (registry/repository[:tag])."""
        return f"{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag else "")

    def pinned(self, digest: str) -> str:
        return f"{self.registry}/{self.repository}@{digest}"


def private_ecr_registry(account: str, region: str) -> str:
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"{account}.dkr.ecr.{region}{suffix}"


def parse(reference: Any, field: str) -> ImageRef:
    """Parse one reference; ``field`` names the input it came from (for the error message)."""
    if not isinstance(reference, str) or not reference:
        raise InputValidationError(f"{field}: expected an image reference string, got {reference!r}")
    m = _REFERENCE.fullmatch(reference)
    if not m:
        raise InputValidationError(
            f"{field}: {reference!r} is not a valid image reference; use <registry>/<repository>[:tag][@sha256:<64 hex>], "
            "for example 123456789012.dkr.ecr.us-west-2.amazonaws.com/vllm/vllm-openai:v0.11.0"
        )
    registry = m["registry"]
    if "." not in registry and ":" not in registry and registry != "localhost":
        raise InputValidationError(
            f"{field}: {reference!r} has no registry host; use the fully qualified reference, "
            f"for example docker.io/{reference} pinned with @sha256:..."
        )
    if not m["tag"] and not m["digest"]:
        raise InputValidationError(f"{field}: {reference!r} has neither a tag nor a digest; add :<tag> (private ECR) or @sha256:<digest>")
    return ImageRef(registry=registry, repository=m["repository"], tag=m["tag"], digest=m["digest"])


def resolve(
    ref: ImageRef,
    *,
    field: str,
    reference: str,
    ecr: Any,
    account: str,
    region: str,
    probe: AnonymousProbe,
) -> dict[str, str]:
    """The metadata entry of one image: {"reference", "digest", "pinned", "kind"}."""
    kind = ref.kind
    same_account_ecr = ref.ecr_account_region == (account, region)
    if not same_account_ecr and not ref.digest:
        where = "private ECR of another account or region" if kind == KIND_PRIVATE_ECR else f"outside this account's ECR ({ref.registry})"
        raise InputValidationError(
            f"{field}: {reference!r} is {where} and not pinned by digest; pin it as {ref.registry}/{ref.repository}@sha256:<digest> "
            "(the pipeline can only resolve tags in this account's ECR)"
        )
    if same_account_ecr:
        digest = _ecr_digest(ecr, ref, field=field, reference=reference)
    else:
        digest = ref.digest or ""
        if kind == KIND_OTHER:
            reason = probe(ref.registry, ref.repository, digest)
            if reason is not None:
                raise InputValidationError(
                    f"{field}: {reference!r} cannot be pulled anonymously ({reason}); the builder only holds ECR credentials: "
                    "copy the image to ECR (for example with an ECR pull-through cache rule) and reference it there"
                )
    return {"reference": ref.name if ref.tag else ref.pinned(digest), "digest": digest, "pinned": ref.pinned(digest), "kind": kind}


def _ecr_digest(ecr: Any, ref: ImageRef, *, field: str, reference: str) -> str:
    image_id: dict[str, Any] = {"imageDigest": ref.digest} if ref.digest else {"imageTag": ref.tag}
    try:
        found = ecr.describe_images(repositoryName=ref.repository, imageIds=[image_id])["imageDetails"]
    except ClientError as exc:
        code = error_code(exc)
        if code == "RepositoryNotFoundException":
            raise InputValidationError(
                f"{field}: {reference!r}: repository {ref.repository!r} does not exist in ECR {ref.registry}; "
                "create it and push the image, or fix the reference"
            ) from exc
        if code == "ImageNotFoundException":
            what = f"digest {ref.digest}" if ref.digest else f"tag {ref.tag!r}"
            raise InputValidationError(
                f"{field}: {reference!r}: {what} is not in ECR repository {ref.repository!r}; push it first or fix the reference"
            ) from exc
        raise translate(exc) from exc
    if not found:
        raise InputValidationError(f"{field}: {reference!r} was not found in ECR repository {ref.repository!r}; push it first")
    digest = str(found[0]["imageDigest"])
    if ref.digest and ref.digest != digest:  # tag@digest where the tag moved: the digest wins, it is what was asked for
        digest = ref.digest
    return digest
