#!/usr/bin/env python3
"""Share vLLM's torch.compile cache between pods through S3 (runs inside the vllm/vllm-openai image).

Standard library + boto3 only: the image has boto3 because vLLM's ``runai`` extra installs
``runai-model-streamer[s3]``, whose ``runai-model-streamer-s3`` requires boto3 (docs/compile-cache.md).

    python3 compile_cache_sync.py restore   # init container, before vLLM starts
    python3 compile_cache_sync.py publish   # native sidecar: after vLLM is Ready, then sleeps
    python3 compile_cache_sync.py publish --once   # the warm-cache Job: publish, then exit

Cache units. vLLM writes ``$VLLM_CACHE_ROOT/torch_compile_cache/<hash>/`` (the hash covers every
factor: GPU, versions, model config; vllm/compilation/backends.py) and, with AOT compilation (on by
default at v0.34.0), ``torch_compile_cache/torch_aot_compile/<hash>/`` (vllm/compilation/decorators.py).
Each such directory is one unit, shared or dropped whole.

S3 layout under ``COMPILE_CACHE_S3_URI`` (``s3://<bucket>/compile-cache/<image key>/``):

    blobs/<sha256>                 file contents, content-addressed: a second writer of the same
                                   key writes the same bytes, so no writer can tear another's set
    manifests/<unit>.json          {"files": {relative path: {"size", "sha256"}}, "bytes", ...},
                                   written LAST with If-None-Match: * (first publisher wins)

A reader trusts a unit only through its manifest and checks every file's size and SHA-256; a unit
with any failure is deleted locally, so vLLM compiles instead of loading a corrupt artifact. An
upload cut before its manifest is invisible. Every run ends with one JSON log line.
Any error is logged and the command exits 0: a cache never stops vLLM from starting.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_DIR_NAME = "torch_compile_cache"
AOT_DIR_NAME = "torch_aot_compile"
STAGING_DIR_NAME = ".compile-cache-staging"  # beside torch_compile_cache, same volume (rename is atomic)
MANIFESTS = "manifests/"
BLOBS = "blobs/"
MANIFEST_VERSION = 1
CHUNK = 1024 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
UNIT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")

# Environment (set by the chart).
ENV_URI = "COMPILE_CACHE_S3_URI"
ENV_MAX_BYTES = "COMPILE_CACHE_MAX_BYTES"
ENV_CONCURRENCY = "COMPILE_CACHE_CONCURRENCY"
ENV_DEADLINE = "COMPILE_CACHE_RESTORE_DEADLINE_SECONDS"
ENV_HEALTH_URL = "COMPILE_CACHE_HEALTH_URL"
ENV_READY_TIMEOUT = "COMPILE_CACHE_READY_TIMEOUT_SECONDS"
ENV_POLL = "COMPILE_CACHE_POLL_SECONDS"
DEFAULTS = {ENV_MAX_BYTES: 2 * 1024**3, ENV_CONCURRENCY: 8, ENV_DEADLINE: 120, ENV_READY_TIMEOUT: 3600, ENV_POLL: 5}
DEFAULT_HEALTH_URL = "http://127.0.0.1:8000/health"


def log(event: str, **fields: Any) -> dict[str, Any]:
    """One JSON line on stdout (``coldstart report`` reads lines whose event starts with compile_cache_)."""
    record = {"event": event, **fields}
    print(json.dumps(record, sort_keys=True), flush=True)
    return record


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> (bucket, "a/b/")."""
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)", uri or "")
    if not match:
        raise ValueError(f"{ENV_URI}: expected s3://<bucket>/<prefix>/, got {uri!r}")
    return match.group(1), match.group(2).rstrip("/") + "/"


# --- local side ---------------------------------------------------------------------------------


def local_units(cache_dir: Path) -> list[str]:
    """Unit names present locally: ``<hash>`` and ``torch_aot_compile/<hash>`` (sorted)."""
    units: list[str] = []
    if not cache_dir.is_dir():
        return units
    for entry in sorted(cache_dir.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        if entry.name == AOT_DIR_NAME:
            units += [f"{AOT_DIR_NAME}/{sub.name}" for sub in sorted(entry.iterdir())
                      if sub.is_dir() and not sub.is_symlink() and UNIT_NAME.fullmatch(sub.name)]
        elif UNIT_NAME.fullmatch(entry.name):
            units.append(entry.name)
    return units


def valid_unit(unit: str) -> bool:
    parts = unit.split("/")
    if len(parts) == 2:
        return parts[0] == AOT_DIR_NAME and bool(UNIT_NAME.fullmatch(parts[1])) and parts[1] not in (".", "..")
    return len(parts) == 1 and bool(UNIT_NAME.fullmatch(unit)) and unit not in (".", "..", AOT_DIR_NAME)


def safe_relative(path: str) -> bool:
    """A manifest path that stays inside its unit directory (the manifest comes from S3: not trusted)."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def scan_unit(unit_dir: Path) -> dict[str, dict[str, Any]]:
    """relative path -> {"size", "sha256"} for every regular file (symlinks are not followed)."""
    files: dict[str, dict[str, Any]] = {}
    for root, dirs, names in os.walk(unit_dir):
        dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
        for name in sorted(names):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(unit_dir).as_posix()
            files[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return files


# --- S3 side ------------------------------------------------------------------------------------


def manifest_key(prefix: str, unit: str) -> str:
    return f"{prefix}{MANIFESTS}{unit}.json"


def blob_key(prefix: str, sha256: str) -> str:
    return f"{prefix}{BLOBS}{sha256}"


def remote_units(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Units that have a manifest (only those exist for readers)."""
    units = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + MANIFESTS):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix + MANIFESTS):]
            if name.endswith(".json") and valid_unit(name[:-5]):
                units.append(name[:-5])
    return sorted(units)


def parse_manifest(raw: bytes, unit: str) -> dict[str, dict[str, Any]]:
    """The manifest's files, or ValueError naming what is wrong."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION or data.get("unit") != unit:
        raise ValueError("not a version-1 manifest of this unit")
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise ValueError("no files")
    for rel, entry in files.items():
        if not safe_relative(rel):
            raise ValueError(f"unsafe path {rel!r}")
        if not isinstance(entry, dict) or not SHA256_HEX.fullmatch(str(entry.get("sha256", ""))):
            raise ValueError(f"bad sha256 for {rel!r}")
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"bad size for {rel!r}")
    return files


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__


# --- restore ------------------------------------------------------------------------------------


def _download(s3: Any, bucket: str, key: str, target: Path, expected: dict[str, Any], stop: threading.Event) -> str | None:
    """Copy one blob to ``target``, checking size and SHA-256. None when good, else the reason."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with target.open("wb") as handle:
        for chunk in iter(lambda: body.read(CHUNK), b""):
            if stop.is_set():
                return "deadline"
            size += len(chunk)
            if size > expected["size"]:
                return "size mismatch"
            digest.update(chunk)
            handle.write(chunk)
    if size != expected["size"]:
        return "size mismatch"
    if digest.hexdigest() != expected["sha256"]:
        return "sha256 mismatch"
    return None


def restore(s3: Any, bucket: str, prefix: str, cache_root: Path, *, max_bytes: int, concurrency: int,
            deadline_seconds: float, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Copy every published unit this node lacks into ``cache_root/torch_compile_cache``, verified.

    A unit appears in place only whole and verified (staged, then renamed); anything else is deleted.
    """
    start = clock()
    cache_dir = cache_root / CACHE_DIR_NAME
    staging_root = cache_root / STAGING_DIR_NAME
    shutil.rmtree(staging_root, ignore_errors=True)  # leftovers of a run cut by its deadline
    staging = staging_root / uuid.uuid4().hex
    summary: dict[str, Any] = {"restored": 0, "present": 0, "dropped": 0, "skipped_over_cap": 0, "missed": 0,
                               "files": 0, "bytes": 0, "units": [], "dropped_units": {}}
    units = remote_units(s3, bucket, prefix)
    if not units:
        summary["missed"] = 1
    local = set(local_units(cache_dir))
    planned: dict[str, dict[str, dict[str, Any]]] = {}
    total = 0
    for unit in units:
        if unit in local:
            summary["present"] += 1  # the node's own cache (compileCacheOnNode) already has it
            continue
        try:
            files = parse_manifest(s3.get_object(Bucket=bucket, Key=manifest_key(prefix, unit))["Body"].read(), unit)
        except Exception as exc:  # a bad manifest drops its unit, never the pod
            summary["dropped"] += 1
            summary["dropped_units"][unit] = f"manifest: {error_code(exc) if hasattr(exc, 'response') else exc}"
            continue
        size = sum(entry["size"] for entry in files.values())
        if total + size > max_bytes:
            summary["skipped_over_cap"] += 1
            continue
        total += size
        planned[unit] = files

    stop = threading.Event()
    pool = futures.ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="restore")
    jobs: dict[futures.Future[str | None], tuple[str, str]] = {}
    for unit, files in planned.items():
        for rel, entry in files.items():
            job = pool.submit(_download, s3, bucket, blob_key(prefix, entry["sha256"]), staging / unit / rel, entry, stop)
            jobs[job] = (unit, rel)
    remaining = max(0.0, deadline_seconds - (clock() - start))
    done, not_done = futures.wait(jobs, timeout=remaining)
    if not_done:
        stop.set()
    failures: dict[str, str] = {}
    for job, (unit, rel) in jobs.items():
        if job in not_done:
            failures.setdefault(unit, "deadline")
            continue
        try:
            reason = job.result()
        except Exception as exc:
            reason = error_code(exc)
        if reason:
            failures.setdefault(unit, f"{rel}: {reason}")
    pool.shutdown(wait=not not_done, cancel_futures=True)

    for unit, files in planned.items():
        if unit in failures:
            summary["dropped"] += 1
            summary["dropped_units"][unit] = failures[unit]
            shutil.rmtree(staging / unit, ignore_errors=True)
            continue
        final = cache_dir / unit
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging / unit, final)  # same volume: the unit appears whole or not at all
        except OSError as exc:  # e.g. vLLM's directory appeared meanwhile: keep it
            summary["dropped"] += 1
            summary["dropped_units"][unit] = f"rename: {exc.strerror}"
            shutil.rmtree(staging / unit, ignore_errors=True)
            continue
        summary["restored"] += 1
        summary["units"].append(unit)
        summary["files"] += len(files)
        summary["bytes"] += sum(entry["size"] for entry in files.values())
    if not not_done:
        shutil.rmtree(staging_root, ignore_errors=True)
    summary["result"] = ("miss" if summary["missed"] else "hit" if summary["restored"] or summary["present"]
                         else "dropped" if summary["dropped"] else "skipped")
    summary["seconds"] = round(clock() - start, 3)
    summary["timed_out"] = bool(not_done)
    return summary


# --- publish ------------------------------------------------------------------------------------


def _published_bytes(s3: Any, bucket: str, prefix: str, units: list[str]) -> int:
    total = 0
    for unit in units:
        try:
            total += int(json.loads(s3.get_object(Bucket=bucket, Key=manifest_key(prefix, unit))["Body"].read())["bytes"])
        except Exception:  # an unreadable manifest counts as nothing
            continue
    return total


def _put_manifest(s3: Any, bucket: str, key: str, body: bytes) -> str:
    """Create the manifest only if absent: "published", or "lost_race" when another pod's exists.

    S3 conditional writes: If-None-Match: * fails with 412 Precondition Failed when the key exists;
    a concurrent conditional write to the same key may get 409 ConditionalRequestConflict, to be
    retried (S3 User Guide, "Preventing object overwrites with conditional writes").
    """
    for attempt in range(3):
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*")
            return "published"
        except Exception as exc:
            code = error_code(exc)
            if code in ("PreconditionFailed", "412"):
                return "lost_race"
            if code in ("ConditionalRequestConflict", "409") and attempt < 2:
                continue
            raise
    return "lost_race"


def publish(s3: Any, bucket: str, prefix: str, cache_root: Path, *, max_bytes: int, concurrency: int,
            clock: Callable[[], float] = time.monotonic, publisher: str = "") -> dict[str, Any]:
    """Upload the units S3 lacks: blobs first, each unit's manifest last and only if still absent."""
    start = clock()
    cache_dir = cache_root / CACHE_DIR_NAME
    summary: dict[str, Any] = {"published": 0, "already": 0, "lost_race": 0, "skipped_over_cap": 0, "failed": 0,
                               "files": 0, "bytes": 0, "units": [], "failed_units": {}}
    remote = set(remote_units(s3, bucket, prefix))
    total = _published_bytes(s3, bucket, prefix, sorted(remote))
    with futures.ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="publish") as pool:
        for unit in local_units(cache_dir):
            if unit in remote:
                summary["already"] += 1
                continue
            unit_dir = cache_dir / unit
            files = scan_unit(unit_dir)
            size = sum(entry["size"] for entry in files.values())
            if not files:
                continue
            if total + size > max_bytes:
                summary["skipped_over_cap"] += 1
                continue
            by_sha = {entry["sha256"]: rel for rel, entry in sorted(files.items())}
            uploads = [pool.submit(s3.upload_file, str(unit_dir / rel), bucket, blob_key(prefix, sha))
                       for sha, rel in by_sha.items()]
            try:
                for upload in uploads:
                    upload.result()
                body = json.dumps({"version": MANIFEST_VERSION, "unit": unit, "files": files, "bytes": size,
                                   "publisher": publisher, "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                  sort_keys=True).encode()
                outcome = _put_manifest(s3, bucket, manifest_key(prefix, unit), body)
            except Exception as exc:  # no manifest: the unit stays invisible
                summary["failed"] += 1
                summary["failed_units"][unit] = error_code(exc)
                continue
            summary[outcome] += 1
            if outcome == "published":
                total += size
                summary["units"].append(unit)
                summary["files"] += len(files)
                summary["bytes"] += size
    summary["seconds"] = round(clock() - start, 3)
    return summary


# --- readiness ----------------------------------------------------------------------------------


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # a fixed local URL
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_ready(url: str, *, timeout_seconds: float, poll_seconds: float,
               probe: Callable[[str], bool] = http_ok, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Poll ``url`` every ``poll_seconds`` at most ``timeout_seconds / poll_seconds`` times."""
    attempts = max(1, int(timeout_seconds // max(poll_seconds, 0.001)))
    for attempt in range(attempts):
        if probe(url):
            return True
        if attempt + 1 < attempts:
            sleep(poll_seconds)
    return False


# --- entry point --------------------------------------------------------------------------------


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    return int(value) if value else int(DEFAULTS[name])


def _client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                    max_pool_connections=max(10, _env_int(ENV_CONCURRENCY) * 2))
    return boto3.client("s3", config=config, endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)


def _boto3_version() -> str:
    try:
        import boto3

        return str(boto3.__version__)
    except Exception:
        return "missing"


def _sleep_forever() -> None:
    """A native sidecar must not exit; wait (no busy loop) until kubelet sends SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def main(argv: list[str] | None = None, *, s3: Any = None, sleep_forever: Callable[[], None] = _sleep_forever) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=("restore", "publish"))
    parser.add_argument("--once", action="store_true", help="publish: exit when done (warm-cache Job) instead of sleeping")
    args = parser.parse_args(argv)
    event = f"compile_cache_{args.command}"
    base = {"boto3": _boto3_version()}
    try:
        bucket, prefix = parse_s3_uri(os.environ.get(ENV_URI, ""))
        cache_root = Path(os.environ.get("VLLM_CACHE_ROOT") or "~/.cache/vllm").expanduser()
        max_bytes, concurrency = _env_int(ENV_MAX_BYTES), _env_int(ENV_CONCURRENCY)
    except ValueError as exc:
        log(event, result="error", error=str(exc), **base)
        return 0 if args.command == "restore" else 2
    if args.command == "restore":
        try:
            summary = restore(s3 or _client(), bucket, prefix, cache_root, deadline_seconds=_env_int(ENV_DEADLINE),
                              max_bytes=max_bytes, concurrency=concurrency)
        except Exception as exc:  # vLLM compiles instead
            log(event, result="error", error=f"{error_code(exc)}: {exc}"[:500], uri=f"s3://{bucket}/{prefix}", **base)
            return 0
        log(event, uri=f"s3://{bucket}/{prefix}", **base, **summary)
        if summary["timed_out"]:
            os._exit(0)  # downloads still blocked in the network: do not wait for them
        return 0

    url = os.environ.get(ENV_HEALTH_URL) or DEFAULT_HEALTH_URL
    timeout = _env_int(ENV_READY_TIMEOUT)
    if not wait_ready(url, timeout_seconds=timeout, poll_seconds=_env_int(ENV_POLL)):
        log(event, result="not_ready", error=f"{url} not healthy within {timeout}s; nothing published", **base)
        if args.once:
            return 1
        sleep_forever()
        return 0
    code = 0
    try:
        summary = publish(s3 or _client(), bucket, prefix, cache_root, publisher=socket.gethostname(),
                          max_bytes=max_bytes, concurrency=concurrency)
        log(event, result="failed" if summary["failed"] else "ok", uri=f"s3://{bucket}/{prefix}", **base, **summary)
        code = 1 if summary["failed"] else 0
    except Exception as exc:
        log(event, result="error", error=f"{error_code(exc)}: {exc}"[:500], uri=f"s3://{bucket}/{prefix}", **base)
        code = 1
    if args.once:
        return code
    sleep_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
