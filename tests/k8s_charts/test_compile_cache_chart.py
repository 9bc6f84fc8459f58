"""The vLLM chart's S3-shared compile cache: restore init container, publish native sidecar, the
ConfigMap carrying the script, and the script run exactly as the manifest says (against moto S3)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from chart_helpers import BUCKET, METADATA, find, published_fixture, synth, vllm_container
from moto.server import ThreadedMotoServer

from k8s_charts.props import COMPILE_CACHE_SCRIPT, VLLM_UID, compile_cache_key
from k8s_charts.vllm import SYNC_CONFIGMAP
from settings import names
from settings.config import load_default_config

CFG = load_default_config()
DIGEST = METADATA["images"][0]["digest"].removeprefix("sha256:")


def _pod(manifests: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return find(manifests, "Deployment")["spec"]["template"]["spec"]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.fixture(scope="module")
def default() -> dict[str, list[dict[str, Any]]]:
    return synth(CFG, published_fixture())[0]


def test_restore_then_publish_sidecar_from_the_cached_image(default) -> None:
    pod = _pod(default)
    init = {c["name"]: c for c in pod["initContainers"]}
    # cache-permissions (node cache) first, then restore, then the sidecar (which must not start before the restore)
    assert list(init) == ["cache-permissions", names.COMPILE_CACHE_RESTORE_CONTAINER, names.COMPILE_CACHE_PUBLISH_CONTAINER]
    restore, publish = init[names.COMPILE_CACHE_RESTORE_CONTAINER], init[names.COMPILE_CACHE_PUBLISH_CONTAINER]
    vllm = vllm_container(default)
    assert restore["image"] == publish["image"] == vllm["image"] and vllm["image"].endswith(f"@sha256:{DIGEST}")
    assert "restartPolicy" not in restore and publish["restartPolicy"] == "Always"  # native sidecar
    assert restore["command"][-1] == "restore" and publish["command"][-1] == "publish"
    for container in (restore, publish):
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True,
            "runAsGroup": VLLM_UID, "runAsNonRoot": True, "runAsUser": VLLM_UID}
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
        env = _env(container)
        assert env["COMPILE_CACHE_S3_URI"] == f"s3://{BUCKET}/{names.COMPILE_CACHE_PREFIX}/sha256-{DIGEST}/"
        assert env["COMPILE_CACHE_MAX_BYTES"] == str(CFG.compileCacheMaxBytes)
        assert env["VLLM_CACHE_ROOT"] == _env(vllm)["VLLM_CACHE_ROOT"]
        assert env["AWS_REGION"] == _env(vllm)["AWS_REGION"] and env["AWS_EC2_METADATA_DISABLED"] == "true"
        script = next(m for m in container["volumeMounts"] if m["name"] == "compile-cache-sync")
        assert script["readOnly"] is True and container["command"][1].startswith(script["mountPath"] + "/")
    cache = {m["name"]: m for m in publish["volumeMounts"]}["vllm-cache"]
    assert cache["readOnly"] is True  # the publisher only reads the cache
    assert _env(publish)["COMPILE_CACHE_HEALTH_URL"] == f"http://127.0.0.1:{names.VLLM_PORT}/health"
    config_map = find(default, "ConfigMap")
    assert config_map["metadata"]["name"] == SYNC_CONFIGMAP
    assert config_map["data"] == {COMPILE_CACHE_SCRIPT.name: COMPILE_CACHE_SCRIPT.read_text()}
    volume = next(v for v in pod["volumes"] if v["name"] == "compile-cache-sync")
    assert volume["configMap"] == {"name": SYNC_CONFIGMAP, "defaultMode": 0o444}


def test_readonly_pods_only_restore_and_off_means_nothing() -> None:
    readonly, _ = synth(replace(CFG, compileCachePublish="readonly"), published_fixture())
    assert [c["name"] for c in _pod(readonly)["initContainers"]] == ["cache-permissions", names.COMPILE_CACHE_RESTORE_CONTAINER]
    off, _ = synth(replace(CFG, compileCacheS3=False), published_fixture())
    assert [c["name"] for c in _pod(off)["initContainers"]] == ["cache-permissions"]
    assert not [o for objs in off.values() for o in objs if o["kind"] == "ConfigMap"]
    # S3 alone, without the node cache: the emptyDir cache volume is restored into
    s3_only, _ = synth(replace(CFG, compileCacheOnNode=False), published_fixture())
    pod = _pod(s3_only)
    assert [c["name"] for c in pod["initContainers"]] == [names.COMPILE_CACHE_RESTORE_CONTAINER, names.COMPILE_CACHE_PUBLISH_CONTAINER]
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "vllm-cache")


def test_unpinned_image_keys_the_cache_by_its_sanitized_tag_with_a_notice() -> None:
    manifests, built = synth(CFG, None)
    restore = next(c for c in _pod(manifests)["initContainers"] if c["name"] == names.COMPILE_CACHE_RESTORE_CONTAINER)
    key = _env(restore)["COMPILE_CACHE_S3_URI"].split("/")[-2]
    assert key == "123456789012.dkr.ecr.us-west-2.amazonaws.com-vllm-vllm-openai-v0.34.0"
    assert any("keyed by the image tag" in n for n in built.notices)
    assert compile_cache_key(f"r/x@sha256:{DIGEST}") == f"sha256-{DIGEST}"


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_manifest_command_runs_the_configmap_script_against_s3(default, tmp_path: Path) -> None:
    """The restore and publish containers' command and env, as synthesized, run the ConfigMap's script."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    vllm = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=vllm.serve_forever, daemon=True).start()
    health = f"http://127.0.0.1:{vllm.server_address[1]}"
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"models-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        script = tmp_path / "opt" / COMPILE_CACHE_SCRIPT.name
        script.parent.mkdir()
        script.write_text(find(default, "ConfigMap")["data"][COMPILE_CACHE_SCRIPT.name])
        init = {c["name"]: c for c in _pod(default)["initContainers"]}

        def run(name: str, cache_root: Path, *extra: str) -> dict[str, Any]:
            container = init[name]
            env = _env(container) | {
                "COMPILE_CACHE_S3_URI": _env(container)["COMPILE_CACHE_S3_URI"].replace(BUCKET, bucket),
                "VLLM_CACHE_ROOT": str(cache_root), "AWS_ENDPOINT_URL_S3": endpoint, "HOME": str(tmp_path),
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "COMPILE_CACHE_HEALTH_URL": f"{health}/health"}  # stands in for vLLM's /health
            done = subprocess.run([sys.executable, str(script), *container["command"][2:], *extra], env=env,
                                  capture_output=True, text=True, timeout=120, check=True)
            return json.loads(done.stdout.strip().splitlines()[-1])

        first = tmp_path / "first"
        assert run(names.COMPILE_CACHE_RESTORE_CONTAINER, first)["result"] == "miss"
        unit = first / "torch_compile_cache" / "0123abcdef" / "rank_0_0" / "backbone"
        unit.mkdir(parents=True)
        (unit / "vllm_compile_cache.py").write_text("artifacts = {}\n")
        published = run(names.COMPILE_CACHE_PUBLISH_CONTAINER, first, "--once")
        assert published["result"] == "ok" and published["published"] == 1
        second = tmp_path / "second"
        restored = run(names.COMPILE_CACHE_RESTORE_CONTAINER, second)
        assert restored["result"] == "hit" and restored["restored"] == 1
        assert (second / "torch_compile_cache" / "0123abcdef" / "rank_0_0" / "backbone" / "vllm_compile_cache.py").read_text() == "artifacts = {}\n"
    finally:
        vllm.shutdown()
        server.stop()
