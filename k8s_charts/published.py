"""Reading the published image-cache snapshot from Parameter Store.

The pipeline publishes two parameters (the contract in the README):
- ``<name>``          the snapshot ID, written LAST, only after a successful build;
- ``<name>/metadata`` JSON (snapshotId, bottlerocketVersion, kubernetesVersion, images, ...),
  written just before the ID.

So the metadata can be ahead of the ID (a publish that stopped between the two writes) or belong
to another snapshot (an operator override). Metadata whose ``snapshotId`` differs from the ID in
use is stale: the ID wins, and the matching metadata is looked up in the parameter's history
(Parameter Store keeps every version). If none matches, the snapshot is used without metadata.

``read_published`` takes a boto3 SSM client so the operator CLI (``doctor``) and tests can reuse it.
It returns None only when nothing is published (ParameterNotFound); credential and network errors
propagate so each caller decides how loud to be.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from k8s_charts.inputs import check_snapshot_id
from settings import parameter_store
from settings.names import metadata_parameter_name

VERSION = re.compile(r"v?(?P<version>\d+\.\d+\.\d+)")
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


@dataclass(frozen=True)
class PublishedImage:
    reference: str  # <registry>/<repo>:<tag>
    digest: str | None  # sha256:...
    pinned: str | None  # <registry>/<repo>@sha256:...

    @property
    def repository_and_tag(self) -> str:
        """``<repo>:<tag>`` without the registry (a first component with '.' or ':', as Docker decides)."""
        first, sep, rest = self.reference.partition("/")
        return rest if sep and ("." in first or ":" in first or first == "localhost") else self.reference


@dataclass(frozen=True)
class PublishedSnapshot:
    """The snapshot the nodes restore their data volume from, with what is known about it."""

    snapshot_id: str
    source: str  # where the ID came from: the parameter name or "--snapshot-id"
    bottlerocket_version: str | None = None  # "1.50.0"; None when the metadata is missing or stale
    kubernetes_version: str | None = None
    images: tuple[PublishedImage, ...] = ()
    platforms: tuple[str, ...] = ()
    volume_size_gib: int | None = None  # optional metadata key "volumeSizeGiB"
    created_at: str | None = None
    execution_arn: str | None = None
    metadata_source: str | None = None  # e.g. "/vllm-coldstart/snapshot-id/metadata (version 3)"
    notes: tuple[str, ...] = field(default=())  # warnings found while reading (stale metadata, ...)

    @property
    def has_metadata(self) -> bool:
        return self.metadata_source is not None


def _is_not_found(err: ClientError) -> bool:
    return parameter_store.is_not_found(err)


def _get(ssm: Any, name: str) -> tuple[str, int] | None:
    try:
        param = ssm.get_parameter(Name=name)["Parameter"]
    except ClientError as err:
        if _is_not_found(err):
            return None
        raise
    return param["Value"], int(param.get("Version", 0))


def _history(ssm: Any, name: str) -> list[tuple[str, int]]:
    """All stored versions of a parameter, newest first."""
    versions = [(p["Value"], int(p.get("Version", 0))) for p in parameter_store.history(ssm, name)]
    return sorted(versions, key=lambda v: v[1], reverse=True)


def _parse_images(raw: Any) -> tuple[PublishedImage, ...]:
    if not isinstance(raw, list):
        return ()
    images = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("reference"), str):
            continue
        digest = item.get("digest") if isinstance(item.get("digest"), str) and DIGEST.fullmatch(item["digest"]) else None
        pinned = item.get("pinned") if isinstance(item.get("pinned"), str) and DIGEST.search(item["pinned"] or "") else None
        images.append(PublishedImage(reference=item["reference"], digest=digest, pinned=pinned))
    return tuple(images)


def _parse_metadata(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _find_metadata(ssm: Any, name: str, snapshot_id: str, notes: list[str]) -> tuple[dict[str, Any], str] | None:
    """The metadata describing ``snapshot_id``; a metadata read denied after the ID was read costs only the metadata."""
    try:
        return _search_metadata(ssm, name, snapshot_id, notes)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "ClientError")
        notes.append(f"cannot read {name} ({code}): using {snapshot_id} without metadata "
                     "(Bottlerocket version and image digest unknown)")
        return None


def _search_metadata(ssm: Any, name: str, snapshot_id: str, notes: list[str]) -> tuple[dict[str, Any], str] | None:
    """The current version if it describes ``snapshot_id``, else the newest matching one in the history."""
    current = _get(ssm, name)
    if current is None:
        notes.append(f"{name} is not published: using {snapshot_id} without metadata (Bottlerocket version and image digest unknown)")
        return None
    data = _parse_metadata(current[0])
    if data is None:
        notes.append(f"{name} (version {current[1]}) is not a JSON object; ignoring it")
    elif data.get("snapshotId") == snapshot_id:
        return data, f"{name} (version {current[1]})"
    else:
        notes.append(f"{name} (version {current[1]}) describes {data.get('snapshotId')!r}, not {snapshot_id}: "
                     "stale metadata, looking for the matching version in the parameter history")
    for value, version in _history(ssm, name):
        older = _parse_metadata(value)
        if older is not None and older.get("snapshotId") == snapshot_id:
            notes.append(f"using {name} version {version}, which describes {snapshot_id}")
            return older, f"{name} (version {version})"
    notes.append(f"no version of {name} describes {snapshot_id}: using it without metadata "
                 "(Bottlerocket version and image digest unknown)")
    return None


def _snapshot(snapshot_id: str, source: str, found: tuple[dict[str, Any], str] | None, notes: list[str]) -> PublishedSnapshot:
    if found is None:
        return PublishedSnapshot(snapshot_id=snapshot_id, source=source, notes=tuple(notes))
    data, metadata_source = found
    version = data.get("bottlerocketVersion")
    match = VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        notes.append(f"{metadata_source}: bottlerocketVersion {version!r} is not a version such as 1.50.0; ignoring it")
    size = data.get("volumeSizeGiB")
    platforms = data.get("platforms")
    return PublishedSnapshot(
        snapshot_id=snapshot_id,
        source=source,
        bottlerocket_version=match.group("version") if match else None,
        kubernetes_version=data.get("kubernetesVersion") if isinstance(data.get("kubernetesVersion"), str) else None,
        images=_parse_images(data.get("images")),
        platforms=tuple(p for p in platforms if isinstance(p, str)) if isinstance(platforms, list) else (),
        volume_size_gib=size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None,
        created_at=data.get("createdAt") if isinstance(data.get("createdAt"), str) else None,
        execution_arn=data.get("executionArn") if isinstance(data.get("executionArn"), str) else None,
        metadata_source=metadata_source,
        notes=tuple(notes),
    )


def read_published(ssm: Any, parameter_name: str, *, snapshot_id: str | None = None) -> PublishedSnapshot | None:
    """The published snapshot, or None when nothing is published yet.

    ``snapshot_id`` overrides the parameter (a rollback or a test of a specific snapshot); its
    metadata is still looked up, in the parameter history if need be.

    Raises ChartInputError for a malformed ID (never guesses one) and lets botocore errors other
    than ParameterNotFound (no credentials, no endpoint, access denied) propagate.
    """
    metadata_name = metadata_parameter_name(parameter_name)
    notes: list[str] = []
    if snapshot_id is not None:
        snapshot_id = check_snapshot_id(snapshot_id, "--snapshot-id (or COLDSTART_SNAPSHOT_ID)")
        return _snapshot(snapshot_id, "--snapshot-id", _find_metadata(ssm, metadata_name, snapshot_id, notes), notes)
    current = _get(ssm, parameter_name)
    if current is None:
        return None
    published_id = check_snapshot_id(current[0].strip(), f"{parameter_name} (Parameter Store, version {current[1]})")
    return _snapshot(published_id, parameter_name, _find_metadata(ssm, metadata_name, published_id, notes), notes)
