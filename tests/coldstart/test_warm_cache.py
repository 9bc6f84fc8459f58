"""coldstart warm-cache: Jobs derived from the generated Deployment (the committed golden manifests), one per
GPU family; dry run prints them, --apply runs kubectl (a fake that records its calls)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from coldstart.ops import warm_cache
from coldstart.ops.errors import OperatorError
from settings import names
from settings.config import load_default_config

GOLDEN = Path(__file__).resolve().parent.parent / "k8s_charts" / "golden" / "published"
CFG = load_default_config()


def _jobs(plan: warm_cache.WarmCachePlan) -> list[dict[str, Any]]:
    return [o for o in plan.objects if o["kind"] == "Job"]


def test_one_job_per_family_running_the_deployments_pod_with_the_publisher_as_main() -> None:
    plan = warm_cache.plan(GOLDEN, publish_mode="pods")
    deployment = next(d for d in yaml.safe_load_all((GOLDEN / "vllm.k8s.yaml").read_text()) if d and d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert plan.families == CFG.gpuInstanceFamilies
    assert plan.job_names == [f"vllm-warm-cache-{f}" for f in CFG.gpuInstanceFamilies]
    for job, family in zip(_jobs(plan), plan.families, strict=True):
        spec = job["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {**pod["nodeSelector"], warm_cache.FAMILY_LABEL: family}
        assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
        assert spec["serviceAccountName"] == pod["serviceAccountName"]
        init = [c["name"] for c in spec["initContainers"]]
        assert init == ["cache-permissions", names.COMPILE_CACHE_RESTORE_CONTAINER, "vllm"]
        vllm = spec["initContainers"][-1]
        assert vllm["restartPolicy"] == "Always" and "startupProbe" not in vllm
        original = next(c for c in pod["containers"] if c["name"] == "vllm")
        assert (vllm["image"], vllm["args"], vllm["env"]) == (original["image"], original["args"], original["env"])
        [publisher] = spec["containers"]
        assert publisher["command"][-2:] == ["publish", "--once"] and "restartPolicy" not in publisher
        assert publisher["image"] == original["image"]
        # not selected by the Service, PDB or NetworkPolicy of the serving pods
        assert job["spec"]["template"]["metadata"]["labels"]["app"] == names.WARM_CACHE_APP_LABEL
        assert kubernetes_validate.validate(job, f"{CFG.kubernetesVersion}.0", strict=True)


def test_readonly_uses_the_writer_service_account_and_builds_the_publisher(tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all((GOLDEN / "vllm.k8s.yaml").read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    spec["initContainers"] = [c for c in spec["initContainers"] if c["name"] != names.COMPILE_CACHE_PUBLISH_CONTAINER]
    (tmp_path / "vllm.k8s.yaml").write_text(yaml.safe_dump_all(docs))
    shutil.copy(GOLDEN / "gpu-nodes.k8s.yaml", tmp_path)
    plan = warm_cache.plan(tmp_path, publish_mode="readonly")
    [account] = [o for o in plan.objects if o["kind"] == "ServiceAccount"]
    assert account["metadata"]["name"] == names.COMPILE_CACHE_WRITER_SERVICE_ACCOUNT
    job = _jobs(plan)[0]["spec"]["template"]["spec"]
    assert job["serviceAccountName"] == names.COMPILE_CACHE_WRITER_SERVICE_ACCOUNT
    [publisher] = job["containers"]
    assert publisher["command"][-2:] == ["publish", "--once"]
    assert {"name": "vllm-cache", "mountPath": "/var/cache/vllm", "readOnly": True} in publisher["volumeMounts"]
    assert any(e["name"] == "COMPILE_CACHE_HEALTH_URL" for e in publisher["env"])
    for obj in plan.objects:
        kubernetes_validate.validate(obj, f"{CFG.kubernetesVersion}.0", strict=True)
    # manifests of the other mode are refused rather than silently mixed
    with pytest.raises(OperatorError, match="compileCachePublish"):
        warm_cache.plan(tmp_path, publish_mode="pods")


def test_without_the_s3_cache_or_manifests_it_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="update-manifests"):
        warm_cache.plan(tmp_path, publish_mode="pods")
    docs = [d for d in yaml.safe_load_all((GOLDEN / "vllm.k8s.yaml").read_text()) if d]
    spec = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    spec["initContainers"] = [c for c in spec["initContainers"] if c["name"] == "cache-permissions"]
    (tmp_path / "vllm.k8s.yaml").write_text(yaml.safe_dump_all(docs))
    shutil.copy(GOLDEN / "gpu-nodes.k8s.yaml", tmp_path)
    with pytest.raises(OperatorError, match="compileCacheS3"):
        warm_cache.plan(tmp_path, publish_mode="pods")


class FakeKubectl:
    def __init__(self, codes: dict[str, int] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.applied: list[dict[str, Any]] = []
        self.codes = codes or {}

    def unavailable_reason(self) -> str | None:
        return None

    def run(self, args: list[str]) -> int:
        self.calls.append(list(args))
        if args[0] == "apply":
            self.applied = [d for d in yaml.safe_load_all(Path(args[2]).read_text()) if d]
        return self.codes.get(args[0], 0)


def test_cli_dry_run_prints_and_apply_replaces_the_jobs(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "dist"
    shutil.copytree(GOLDEN, dist)
    fake = FakeKubectl()
    monkeypatch.setattr("coldstart.cli.Kubectl", lambda context=None: fake)
    dry = cli("warm-cache", "--manifests-dir", str(dist))
    assert dry.exit_code == 0, dry.output
    printed = [d for d in yaml.safe_load_all(dry.stdout) if d]
    assert [d["metadata"]["name"] for d in printed] == [f"vllm-warm-cache-{f}" for f in CFG.gpuInstanceFamilies]
    assert fake.calls == []
    applied = cli("warm-cache", "--manifests-dir", str(dist), "--apply")
    assert applied.exit_code == 0, applied.output
    names_ = [f"vllm-warm-cache-{f}" for f in CFG.gpuInstanceFamilies]
    assert fake.calls[0] == ["delete", "job", "-n", CFG.vllmNamespace, *names_, "--ignore-not-found"]
    assert fake.calls[1][:2] == ["apply", "-f"] and not fake.calls[1][2].startswith(str(dist))  # never into dist/
    assert fake.applied == printed
    assert sorted(p.name for p in dist.iterdir()) == ["chat.k8s.yaml", "gpu-nodes.k8s.yaml", "vllm.k8s.yaml"]
    failing = FakeKubectl({"apply": 1})
    monkeypatch.setattr("coldstart.cli.Kubectl", lambda context=None: failing)
    result = cli("warm-cache", "--manifests-dir", str(dist), "--apply")
    assert result.exit_code == 1 and "kubectl apply failed" in result.output
