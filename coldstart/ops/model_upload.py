"""setup-model-s3: copy a model folder (or a Hugging Face snapshot) to ``s3://<bucket>/<prefix>/``.

Change detection: each object carries the file's SHA-256 in its user metadata (``x-amz-meta-sha256``),
set when the upload starts, so it works for multipart uploads too. S3's own SHA256 checksum of a
multipart object is a checksum *of the part checksums* ("<base64>-<parts>"), which depends on the
part size and cannot be compared with a file's SHA-256; we still ask S3 for SHA256 part checksums
(``ChecksumAlgorithm``) so every part is verified server-side in transit. A file is skipped when an
object with the same size and the same ``sha256`` metadata is already there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager
from s3transfer.subscribers import BaseSubscriber

from coldstart.ops.errors import OperatorError
from coldstart.ops.model_layout import SAFETENSORS_SUFFIX, ModelFile, parse_safetensors_header

SHA256_METADATA = "sha256"  # stored as x-amz-meta-sha256
MiB = 1024 * 1024
# Hub files worth fetching for vLLM: weights, configs, tokenizers. Leaves out *.bin/*.pth duplicates.
HUB_ALLOW_PATTERNS = ["*.safetensors", "*.json", "*.model", "*.txt", "*.tiktoken", "tokenizer*"]


def transfer_config(concurrency: int = 16, chunk_mib: int = 64) -> TransferConfig:
    """Multipart above one chunk, ``concurrency`` parts in flight (across files too)."""
    return TransferConfig(
        multipart_threshold=chunk_mib * MiB,
        multipart_chunksize=chunk_mib * MiB,
        max_concurrency=concurrency,
        use_threads=True,
    )


def object_key(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}"


def sha256_of(path: Path, chunk: int = 8 * MiB) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class UploadPlan:
    bucket: str
    prefix: str
    upload: list[ModelFile] = field(default_factory=list)
    skip: list[ModelFile] = field(default_factory=list)
    stray_weights: list[str] = field(default_factory=list)  # keys of *.safetensors not in this model
    digests: dict[str, str] = field(default_factory=dict)  # file name -> sha256 hex

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f in self.upload)


def _direct_objects(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Objects directly under the prefix (what the streamer sees): key -> size."""
    found: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.strip("/") + "/", Delimiter="/"):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj["Size"]
    return found


def plan_upload(s3: Any, bucket: str, prefix: str, files: Iterable[ModelFile], digests: dict[str, str]) -> UploadPlan:
    plan = UploadPlan(bucket=bucket, prefix=prefix.strip("/"), digests=dict(digests))
    existing = _direct_objects(s3, bucket, prefix)
    local_keys = set()
    for f in files:
        key = object_key(prefix, f.name)
        local_keys.add(key)
        same = existing.get(key) == f.size and _remote_sha256(s3, bucket, key) == digests[f.name]
        (plan.skip if same else plan.upload).append(f)
    plan.stray_weights = sorted(k for k in existing if k.endswith(SAFETENSORS_SUFFIX) and k not in local_keys)
    return plan


def _remote_sha256(s3: Any, bucket: str, key: str) -> str | None:
    return s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get(SHA256_METADATA)


class _Progress(BaseSubscriber):
    def __init__(self, on_bytes: Callable[[int], None]):
        self._on_bytes = on_bytes

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        self._on_bytes(bytes_transferred)


def upload(s3: Any, plan: UploadPlan, config: TransferConfig, on_bytes: Callable[[int], None] = lambda n: None) -> None:
    """Upload the plan's files concurrently; raises the first transfer error after all finish."""
    with create_transfer_manager(s3, config) as manager:
        futures = [
            manager.upload(
                str(f.path),
                plan.bucket,
                object_key(plan.prefix, f.name),
                extra_args={"Metadata": {SHA256_METADATA: plan.digests[f.name]}, "ChecksumAlgorithm": "SHA256"},
                subscribers=[_Progress(on_bytes)],
            )
            for f in plan.upload
        ]
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # collected: one summary error after every transfer has finished
                errors.append(f"{future.meta.call_args.key}: {exc}")
    if errors:
        raise OperatorError(f"upload failed for {len(errors)} file(s): {errors[0]}; re-run to resume (finished files are skipped)")


def verify(s3: Any, plan: UploadPlan, files: Iterable[ModelFile]) -> None:
    """Check every file is at the prefix with its size and sha256, and each weight's header parses from S3."""
    problems = []
    for f in files:
        key = object_key(plan.prefix, f.name)
        head = s3.head_object(Bucket=plan.bucket, Key=key)
        if head["ContentLength"] != f.size:
            problems.append(f"{key}: {head['ContentLength']} bytes in S3, {f.size} locally")
        elif head.get("Metadata", {}).get(SHA256_METADATA) != plan.digests[f.name]:
            problems.append(f"{key}: sha256 metadata does not match the local file")
        elif f.name.endswith(SAFETENSORS_SUFFIX):
            problems.extend(_verify_remote_header(s3, plan.bucket, key, f.size))
    if problems:
        raise OperatorError("verification failed: " + "; ".join(problems) + "; re-run setup-model-s3")


def _verify_remote_header(s3: Any, bucket: str, key: str, size: int) -> list[str]:
    """Read the header the way the streamer will (ranged GETs) and parse it."""
    first = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-7")["Body"].read()
    length = int.from_bytes(first, "little") if len(first) == 8 else 0
    head = first
    if 0 < length < size:
        head = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{7 + length}")["Body"].read()
    try:
        parse_safetensors_header(head, size, key)
    except ValueError as exc:
        return [str(exc)]
    return []


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True})


def download_from_hub(repo_id: str, revision: str | None = None, local_dir: Path | None = None) -> Path:
    """Fetch the model's weights, configs and tokenizer from the Hub (HF_TOKEN for gated models)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        path = snapshot_download(
            repo_id=repo_id, revision=revision, allow_patterns=HUB_ALLOW_PATTERNS, local_dir=str(local_dir) if local_dir else None
        )
    except GatedRepoError:
        raise OperatorError(f"{repo_id} is gated: accept its licence on huggingface.co and export HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise OperatorError(f"Hugging Face repo {repo_id} not found (or private without HF_TOKEN); check coldstart:modelSourceId") from None
    except LocalEntryNotFoundError as exc:
        raise OperatorError(f"cannot download {repo_id} (offline?): {exc}; or pass --from-dir <folder>") from None
    except HfHubHTTPError as exc:
        raise OperatorError(f"Hugging Face download of {repo_id} failed: {exc}") from None
    return Path(path)
