"""The compile-cache sync script (k8s_charts/runtime/compile_cache_sync.py) against a moto S3 SERVER
through real boto3 (HTTP on 127.0.0.1, as the pod talks to S3).

Concurrency is set by ordering (threads + events, in a client wrapper that pauses chosen calls),
never by sleeps. moto 5.2.5 enforces ``If-None-Match: *`` on PutObject (412 PreconditionFailed when
the key exists; moto/s3/responses.py ``_key_response_put``), checked below; its check is not atomic
with the write, so the two-publisher test orders the two manifest writes explicitly. Real S3 makes
the conditional write atomic (S3 User Guide, "Preventing object overwrites with conditional writes").
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from k8s_charts.runtime import compile_cache_sync as sync

REGION = "us-west-2"
PREFIX = "compile-cache/sha256-" + "a" * 64 + "/"
UNIT = "0123abcdef"
AOT_UNIT = "torch_aot_compile/" + "b" * 64
WAIT = 30  # seconds: only a safety net against a hang, never part of the ordering


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def make_cache(root: Path, flavour: str = "a", units: tuple[str, ...] = (UNIT, AOT_UNIT)) -> Path:
    """A VLLM_CACHE_ROOT with torch_compile_cache units shaped like vLLM v0.34.0's."""
    cache = root / sync.CACHE_DIR_NAME
    for unit in units:
        base = cache / unit
        if unit.startswith(sync.AOT_DIR_NAME):
            files = {"rank_0_0/model": b"aot-" + flavour.encode() * 3000,
                     "inductor_cache/fx/xy/entry": b"fx-" + flavour.encode() * 500,
                     "inductor_cache/triton/0/kernel.cubin": bytes(range(256)) * 8 + flavour.encode()}
        else:
            files = {"rank_0_0/backbone/vllm_compile_cache.py": f"# {flavour}\nartifacts = {{}}\n".encode(),
                     "rank_0_0/backbone/cache_key_factors.json": b'{"env": "' + flavour.encode() + b'"}',
                     "rank_0_0/backbone/artifact_compile_range_1_8192_subgraph_0": flavour.encode() * 70_000,
                     "rank_0_0/backbone/same_bytes_twice": b"dup", "rank_0_0/backbone/same_bytes_again": b"dup"}
        for rel, data in files.items():
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_bytes(data)
    return root


def tree(root: Path) -> dict[str, bytes]:
    cache = root / sync.CACHE_DIR_NAME
    return {p.relative_to(cache).as_posix(): p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}


def unit_bytes(root: Path, unit: str) -> int:
    return sum(p.stat().st_size for p in (root / sync.CACHE_DIR_NAME / unit).rglob("*") if p.is_file())


def do_restore(s3: Any, bucket: str, root: Path, **kw: Any) -> dict[str, Any]:
    args = {"max_bytes": 2 * 1024**3, "concurrency": 4, "deadline_seconds": 120, **kw}
    return sync.restore(s3, bucket, PREFIX, root, **args)


def do_publish(s3: Any, bucket: str, root: Path, **kw: Any) -> dict[str, Any]:
    args = {"max_bytes": 2 * 1024**3, "concurrency": 4, **kw}
    return sync.publish(s3, bucket, PREFIX, root, **args)


class Paused:
    """Wraps a boto3 client; ``before(name, key)`` runs before each call, so tests can order or cut them."""

    def __init__(self, client: Any, before: Callable[[str, str], None]) -> None:
        self._client, self._before = client, before

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in ("put_object", "upload_file", "get_object"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            key = kwargs.get("Key") or (args[2] if name == "upload_file" else "")
            self._before(name, key)
            return attr(*args, **kwargs)

        return call


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


# --- miss, publish, hit -----------------------------------------------------------------------------


def test_miss_then_publish_then_a_new_node_restores_identical_bytes(s3: Any, bucket: str, tmp_path: Path) -> None:
    # Given an empty prefix: the first pod misses (not an error) and compiles
    first = tmp_path / "first"
    miss = do_restore(s3, bucket, first)
    assert miss["result"] == "miss" and miss["missed"] == 1 and miss["restored"] == 0
    make_cache(first)
    # When it publishes after Ready
    published = do_publish(s3, bucket, first, publisher="pod-1")
    assert published["published"] == 2 and published["failed"] == 0 and sorted(published["units"]) == sorted([UNIT, AOT_UNIT])
    stored = keys(s3, bucket)
    assert f"{PREFIX}manifests/{UNIT}.json" in stored and f"{PREFIX}manifests/{AOT_UNIT}.json" in stored
    assert all(k.startswith(PREFIX) for k in stored)
    # duplicate contents are stored once (content-addressed)
    assert len([k for k in stored if "/blobs/" in k]) == 7
    # Then a pod on a brand-new node restores the same bytes, and a second publish has nothing to do
    second = tmp_path / "second"
    hit = do_restore(s3, bucket, second)
    assert hit["result"] == "hit" and hit["restored"] == 2 and hit["dropped"] == 0 and hit["files"] == 8
    assert tree(second) == tree(first)
    assert hit["bytes"] == sum(len(v) for v in tree(first).values())
    assert not (second / sync.STAGING_DIR_NAME).exists()
    again = do_publish(s3, bucket, second)
    assert again["published"] == 0 and again["already"] == 2


def test_units_already_on_the_node_are_kept(s3: Any, bucket: str, tmp_path: Path) -> None:
    do_publish(s3, bucket, make_cache(tmp_path / "a", "a"))
    node = make_cache(tmp_path / "node", "n", units=(UNIT,))  # compileCacheOnNode already has UNIT
    result = do_restore(s3, bucket, node)
    assert result["present"] == 1 and result["restored"] == 1 and result["units"] == [AOT_UNIT]
    assert tree(node)[f"{UNIT}/rank_0_0/backbone/vllm_compile_cache.py"].startswith(b"# n")


# --- two publishers at once -------------------------------------------------------------------------


def test_conditional_write_is_enforced_by_this_moto(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"


def test_two_publishers_at_once_one_set_wins_whole(s3: Any, bucket: str, tmp_path: Path) -> None:
    # Given two pods that compiled the same units with different bytes (compilation is not byte-reproducible)
    pod_a, pod_b = make_cache(tmp_path / "a", "a"), make_cache(tmp_path / "b", "b")
    b_at_manifest, a_done = threading.Event(), threading.Event()

    def order_a(name: str, key: str) -> None:  # A writes its manifest only once B has uploaded all its blobs
        if name == "put_object" and "/manifests/" in key:
            assert b_at_manifest.wait(WAIT)

    def order_b(name: str, key: str) -> None:  # B tries its manifest only after A's is written
        if name == "put_object" and "/manifests/" in key:
            b_at_manifest.set()
            assert a_done.wait(WAIT)

    results: dict[str, dict[str, Any]] = {}

    def run_a() -> None:
        try:
            results["a"] = do_publish(Paused(s3, order_a), bucket, pod_a, publisher="a", concurrency=1)
        finally:
            a_done.set()

    def run_b() -> None:
        results["b"] = do_publish(Paused(s3, order_b), bucket, pod_b, publisher="b", concurrency=1)

    # A's first manifest waits until B has uploaded that unit's blobs and reached its manifest; B's manifest
    # writes wait until A is done. So for UNIT both blob sets are in S3 before either manifest is tried.
    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert results["a"]["published"] == 2
    assert results["b"]["published"] == 0 and results["b"]["lost_race"] == 2 and results["b"]["failed"] == 0
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{PREFIX}manifests/{UNIT}.json")["Body"].read())
    assert manifest["publisher"] == "a"
    # Then a reader gets A's set, whole, even though B's blobs sit beside it
    reader = tmp_path / "reader"
    result = do_restore(s3, bucket, reader)
    assert result["restored"] == 2 and result["dropped"] == 0
    assert tree(reader) == tree(pod_a)


# --- corruption, cuts, caps, deadlines ---------------------------------------------------------------


@pytest.mark.parametrize("tamper", ["same size", "shorter", "longer"])
def test_a_corrupt_object_drops_its_unit_so_vllm_recompiles(s3: Any, bucket: str, tmp_path: Path, tamper: str) -> None:
    source = make_cache(tmp_path / "src")
    do_publish(s3, bucket, source)
    files = json.loads(s3.get_object(Bucket=bucket, Key=f"{PREFIX}manifests/{UNIT}.json")["Body"].read())["files"]
    victim = files["rank_0_0/backbone/artifact_compile_range_1_8192_subgraph_0"]
    data = {"same size": b"x" * victim["size"], "shorter": b"x", "longer": b"x" * (victim["size"] + 1)}[tamper]
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}blobs/{victim['sha256']}", Body=data)
    node = tmp_path / "node"
    result = do_restore(s3, bucket, node)
    assert result["dropped"] == 1 and UNIT in result["dropped_units"] and "mismatch" in result["dropped_units"][UNIT]
    assert result["restored"] == 1 and result["units"] == [AOT_UNIT]
    assert not (node / sync.CACHE_DIR_NAME / UNIT).exists()  # nothing of it left for vLLM to load
    assert not (node / sync.STAGING_DIR_NAME).exists()


def test_an_upload_cut_halfway_is_never_visible(s3: Any, bucket: str, tmp_path: Path) -> None:
    source = make_cache(tmp_path / "src", units=(UNIT,))
    uploads: list[str] = []

    def cut_after_two(name: str, key: str) -> None:  # the pod is killed after two blobs
        if name == "upload_file":
            uploads.append(key)
            if len(uploads) > 2:
                raise ConnectionError("pod killed")

    result = do_publish(Paused(s3, cut_after_two), bucket, source, concurrency=1)
    assert result["failed"] == 1 and result["published"] == 0
    stored = keys(s3, bucket)
    assert len([k for k in stored if "/blobs/" in k]) == 2 and not [k for k in stored if "/manifests/" in k]
    # a reader sees nothing (no manifest): a miss, not a half set
    assert do_restore(s3, bucket, tmp_path / "reader")["result"] == "miss"
    # the next publisher completes the unit
    assert do_publish(s3, bucket, source)["published"] == 1
    reader = tmp_path / "reader2"
    assert do_restore(s3, bucket, reader)["restored"] == 1 and tree(reader) == tree(source)


def test_the_size_cap_bounds_what_is_published_and_restored(s3: Any, bucket: str, tmp_path: Path) -> None:
    source = make_cache(tmp_path / "src")
    aot, plain = unit_bytes(source, AOT_UNIT), unit_bytes(source, UNIT)
    assert plain > aot
    # Given a cap that fits only the first unit in order (torch_aot_compile/... sorts after the hash)
    capped = do_publish(s3, bucket, source, max_bytes=plain)
    assert capped["published"] == 1 and capped["units"] == [UNIT] and capped["skipped_over_cap"] == 1
    # the cap counts what is already published: a later pod cannot add past it
    assert do_publish(s3, bucket, source, max_bytes=plain + aot - 1)["skipped_over_cap"] == 1
    assert do_publish(s3, bucket, source, max_bytes=plain + aot)["published"] == 1
    # restore stops at the cap too (the pod's disk)
    result = do_restore(s3, bucket, tmp_path / "node", max_bytes=aot)
    assert result["restored"] == 1 and result["units"] == [AOT_UNIT] and result["skipped_over_cap"] == 1


def test_restore_is_bounded_in_time_and_leaves_nothing_half_done(s3: Any, bucket: str, tmp_path: Path) -> None:
    do_publish(s3, bucket, make_cache(tmp_path / "src", units=(UNIT,)))
    release = threading.Event()

    def stall(name: str, key: str) -> None:  # S3 stops answering for one blob
        if name == "get_object" and key.endswith(json.loads(s3.get_object(
                Bucket=bucket, Key=f"{PREFIX}manifests/{UNIT}.json")["Body"].read())["files"]["rank_0_0/backbone/same_bytes_twice"]["sha256"]):
            assert release.wait(WAIT)

    node = tmp_path / "node"
    try:
        result = do_restore(Paused(s3, stall), bucket, node, deadline_seconds=0)
    finally:
        release.set()
    assert result["timed_out"] is True and result["dropped"] == 1 and result["restored"] == 0
    assert result["dropped_units"][UNIT] == "deadline"
    assert not (node / sync.CACHE_DIR_NAME / UNIT).exists()


def test_a_hostile_manifest_cannot_write_outside_its_unit(s3: Any, bucket: str, tmp_path: Path) -> None:
    blob = "c" * 64
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}blobs/{blob}", Body=b"evil")
    for path in ("../../escape.py", "/etc/evil", "a/../../b"):
        body = {"version": 1, "unit": UNIT, "bytes": 4, "files": {path: {"size": 4, "sha256": blob}}}
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}manifests/{UNIT}.json", Body=json.dumps(body).encode())
        result = do_restore(s3, bucket, tmp_path / "node")
        assert result["dropped"] == 1 and "unsafe path" in result["dropped_units"][UNIT]
    assert not list(tmp_path.rglob("escape.py")) and not (tmp_path / "node" / sync.CACHE_DIR_NAME / UNIT).exists()


def test_local_units_cover_both_vllm_layouts_and_ignore_the_rest(tmp_path: Path) -> None:
    root = make_cache(tmp_path)
    (root / sync.CACHE_DIR_NAME / ".hidden").mkdir()
    (root / sync.CACHE_DIR_NAME / "stray-file").write_text("x")
    assert sync.local_units(root / sync.CACHE_DIR_NAME) == [UNIT, AOT_UNIT]
    assert sync.valid_unit(AOT_UNIT) and not sync.valid_unit("../x") and not sync.valid_unit("torch_aot_compile")


# --- readiness and the entry point ------------------------------------------------------------------


def test_wait_ready_polls_a_bounded_number_of_times() -> None:
    answers, sleeps = iter([False, False, True]), []
    assert sync.wait_ready("u", timeout_seconds=50, poll_seconds=5, probe=lambda _u: next(answers), sleep=sleeps.append)
    assert sleeps == [5, 5]
    sleeps.clear()
    assert not sync.wait_ready("u", timeout_seconds=20, poll_seconds=5, probe=lambda _u: False, sleep=sleeps.append)
    assert sleeps == [5, 5, 5]  # 4 probes, no sleep after the last


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_ok_against_a_real_socket(health: str) -> None:
    assert sync.http_ok(f"{health}/health") and not sync.http_ok(f"{health}/other")
    assert not sync.http_ok("http://127.0.0.1:1/health")


def test_main_logs_one_json_line_per_run(s3: Any, bucket: str, tmp_path: Path, health: str,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(sync.ENV_URI, f"s3://{bucket}/{PREFIX}")
    monkeypatch.setenv(sync.ENV_HEALTH_URL, f"{health}/health")
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(make_cache(tmp_path / "pod")))
    slept: list[bool] = []
    # the sidecar publishes once vLLM is healthy, then sleeps instead of exiting
    assert sync.main(["publish"], s3=s3, sleep_forever=lambda: slept.append(True)) == 0
    assert slept == [True]
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["event"] == "compile_cache_publish" and line["result"] == "ok" and line["published"] == 2
    assert "boto3" in line and "seconds" in line
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(tmp_path / "fresh"))
    assert sync.main(["restore"], s3=s3) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["event"] == "compile_cache_restore" and line["result"] == "hit" and line["restored"] == 2
    # a bad URI or an unreachable bucket never blocks vLLM: exit 0 with an error line
    monkeypatch.setenv(sync.ENV_URI, "not-a-uri")
    assert sync.main(["restore"], s3=s3) == 0
    assert json.loads(capsys.readouterr().out.strip())["result"] == "error"
    monkeypatch.setenv(sync.ENV_URI, "s3://no-such-bucket-here/compile-cache/x/")
    assert sync.main(["restore"], s3=s3) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["result"] == "error" and "NoSuchBucket" in line["error"]


def test_publish_once_exits_non_zero_when_vllm_never_becomes_ready(s3: Any, bucket: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sync.ENV_URI, f"s3://{bucket}/{PREFIX}")
    monkeypatch.setenv(sync.ENV_HEALTH_URL, "http://127.0.0.1:1/health")
    monkeypatch.setenv(sync.ENV_READY_TIMEOUT, "1")
    monkeypatch.setenv(sync.ENV_POLL, "1")
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(make_cache(tmp_path / "pod")))
    assert sync.main(["publish", "--once"], s3=s3) == 1
    assert keys(s3, bucket) == []
