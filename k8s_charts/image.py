"""Which vLLM image reference the Deployment runs.

Preference order:
1. the digest-pinned reference the snapshot was built with (``images[].pinned`` in the metadata),
   when it is the configured ``<vllmRepository>:<vllmImageTag>`` — pinned by digest, and already
   on the node's data volume, so no pull;
2. ``<account>.dkr.ecr.<region>.amazonaws.com/<vllmRepository>:<vllmImageTag>`` when the account
   and region are known (private ECR, as the pipeline caches it);
3. ``docker.io/<vllmRepository>:<vllmImageTag>`` with a loud warning: pulled from Docker Hub on
   every new node (rate limits, no cache hit, not pinned).
"""

from __future__ import annotations

from dataclasses import dataclass

from k8s_charts.inputs import is_token
from k8s_charts.published import PublishedImage, PublishedSnapshot
from settings.config import AppConfig


@dataclass(frozen=True)
class ImageChoice:
    reference: str
    pinned: bool
    cached: bool  # the snapshot holds this image (a pinned reference from its metadata)
    notes: tuple[str, ...]


def ecr_registry(account: str | None, region: str | None) -> str | None:
    if not account or not region:
        return None
    suffix = "amazonaws.com.cn" if (not is_token(region) and region.startswith("cn-")) else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}"


def _matching(images: tuple[PublishedImage, ...], repository: str, tag: str) -> PublishedImage | None:
    wanted = f"{repository}:{tag}"
    for image in images:
        if image.repository_and_tag == wanted and image.pinned:
            return image
    return None


def choose_image(cfg: AppConfig, published: PublishedSnapshot | None, account: str | None, region: str | None) -> ImageChoice:
    wanted = f"{cfg.vllmRepository}:{cfg.vllmImageTag}"
    notes: list[str] = []
    if published is not None and published.images:
        match = _matching(published.images, cfg.vllmRepository, cfg.vllmImageTag)
        if match is not None:
            return ImageChoice(reference=match.pinned or match.reference, pinned=True, cached=True, notes=())
        cached = ", ".join(i.reference for i in published.images)
        notes.append(f"snapshot {published.snapshot_id} caches [{cached}], not {wanted} (coldstart:vllmRepository/"
                     "vllmImageTag): deploying it by tag; nodes will PULL it until a snapshot with it is published")
    registry = ecr_registry(account, region)
    if registry is not None:
        return ImageChoice(reference=f"{registry}/{wanted}", pinned=False, cached=False, notes=tuple(notes))
    notes.append(f"WARNING: account/region unknown and no pinned image published: the Deployment uses docker.io/{wanted}, "
                 "which is NOT the image cached in the snapshot; every node pulls it from Docker Hub (rate limits, slow cold "
                 "start). Pass --account and --region (or set coldstart:account/region) to use private ECR.")
    return ImageChoice(reference=f"docker.io/{wanted}", pinned=False, cached=False, notes=tuple(notes))
