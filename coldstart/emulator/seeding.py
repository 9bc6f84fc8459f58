"""Seeding what moto does not ship: the public Bottlerocket parameters, the vLLM image in ECR."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from coldstart.emulator.blobs import push_blob
from coldstart.emulator.common import ACCOUNT, DEFAULT_BOTTLEROCKET_VERSION, DEFAULT_REGION, VLLM_IMAGE_ENV


def _ssm_backend(region: str, account: str) -> Any:
    from moto.ssm.models import ssm_backends

    return ssm_backends[account][region]


def seed_public_parameter(name: str, value: str, *, region: str = DEFAULT_REGION, account: str = ACCOUNT) -> None:
    """Write a parameter under the reserved /aws/ prefix straight into moto's SSM backend (PutParameter refuses it)."""
    from moto.ssm.models import Parameter

    params = _ssm_backend(region, account)._parameters
    versions = params[name]
    versions.append(Parameter(account_id=account, name=name, value=value, parameter_type="String", description=None,
                              allowed_pattern=None, keyid=None, last_modified_date=datetime.now(UTC),
                              version=len(versions) + 1, data_type="text"))


def seed_bottlerocket(region: str = DEFAULT_REGION, kubernetes_version: str = "1.36", version: str = DEFAULT_BOTTLEROCKET_VERSION, *,
                      account: str = ACCOUNT, endpoint_url: str | None = None) -> str:
    """Register a stand-in Bottlerocket AMI in moto and publish it under the public Bottlerocket parameters."""
    from settings import names

    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url)
    ami_id = ec2.register_image(Name=f"bottlerocket-aws-k8s-{kubernetes_version}-x86_64-v{version}-{uuid.uuid4().hex[:8]}",
                                Architecture="x86_64", RootDeviceName=names.BUILDER_ROOT_DEVICE)["ImageId"]
    seed_public_parameter(names.bottlerocket_ami_parameter(kubernetes_version), ami_id, region=region, account=account)
    # The real parameter carries a build suffix, e.g. 1.50.0-abcdef12.
    seed_public_parameter(names.bottlerocket_version_parameter(kubernetes_version), f"{version}-{uuid.uuid4().hex[:8]}",
                          region=region, account=account)
    return ami_id


def seed_ecr_image(ecr: Any, repository: str, tag: str, *, content: str | None = None, env: list[str] | None = None) -> str:
    """Create the repository if needed and push an image index (amd64 + arm64) under ``tag``, whose configs
    carry ``env`` (default: the CUDA 13.0 declaration of vLLM's image); returns its digest. Each call
    pushes a new digest unless ``content`` names the same content again."""
    marker = f"COLDSTART_SEED={content or uuid.uuid4()}"
    return seed_ecr_image_with_config(ecr, repository, tag, env=[*(VLLM_IMAGE_ENV if env is None else env), marker])



def seed_ecr_image_with_config(ecr: Any, repository: str, tag: str, *, env: list[str], arches: tuple[str, ...] = ("amd64", "arm64")) -> str:
    """Push an image index whose per-arch configs carry ``env`` (through moto's layer-upload API); its digest."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    entries = []
    for arch in arches:
        config = json.dumps({"architecture": arch, "os": "linux", "config": {"Env": env}, "rootfs": {"type": "layers", "diff_ids": []}})
        config_digest = push_blob(ecr, repository, config.encode())
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                                          "size": len(config)}, "layers": []})
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageDigest=digest,
                      imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
    digest = "sha256:" + hashlib.sha256(index.encode()).hexdigest()
    ecr.put_image(repositoryName=repository, imageManifest=index, imageDigest=digest, imageTag=tag,
                  imageManifestMediaType="application/vnd.oci.image.index.v1+json")
    return digest


def seed_ecr_from_oci_layout(ecr: Any, repository: str, tag: str, layout: Path) -> str:
    """Push an OCI image layout's index, its manifests and their config blobs to (moto's) ECR under ``tag``
    (layers stay out: nothing in the pipeline reads them); returns the index digest."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    blob = lambda digest: (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()  # noqa: E731
    (top,) = json.loads((layout / "index.json").read_text())["manifests"]
    index = json.loads(blob(top["digest"]))
    for entry in index["manifests"]:
        manifest = blob(entry["digest"])
        push_blob(ecr, repository, blob(json.loads(manifest)["config"]["digest"]))
        ecr.put_image(repositoryName=repository, imageManifest=manifest.decode(), imageDigest=entry["digest"],
                      imageManifestMediaType=entry["mediaType"])
    ecr.put_image(repositoryName=repository, imageManifest=blob(top["digest"]).decode(), imageDigest=top["digest"], imageTag=tag,
                  imageManifestMediaType=top["mediaType"])
    return str(top["digest"])
