"""``coldstart warm-cache``: one warm-up Job per GPU family, so even the first user-facing pod hits the
S3-shared compile cache after a new snapshot (a new image digest = a new, empty cache prefix).

The Jobs are derived from the generated vLLM Deployment (``dist/vllm.k8s.yaml``), so they run the same
image, arguments, environment, volumes and cache sync as the serving pods, with three changes:

- a nodeSelector on ``karpenter.k8s.aws/instance-family`` (one Job per family of the NodePool in
  ``dist/gpu-nodes.k8s.yaml``): vLLM's cache directories are per GPU model;
- vLLM runs as a native sidecar and the publisher (``compile_cache_sync.py publish --once``) is the
  main container: it waits for vLLM's /health, publishes, exits, and the Job completes (kubelet then
  stops the sidecar);
- with ``compileCachePublish = readonly`` the pod uses the writer service account
  (``names.COMPILE_CACHE_WRITER_SERVICE_ACCOUNT``, bound by the cluster stack to the only role that
  may write the cache); the serving pods cannot write.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from coldstart.ops.errors import OperatorError
from settings import names

FAMILY_LABEL = "karpenter.k8s.aws/instance-family"
VLLM_FILE = "vllm.k8s.yaml"
NODES_FILE = "gpu-nodes.k8s.yaml"
ACTIVE_DEADLINE_SECONDS = 3600  # the publisher's own readiness wait is bounded by the same hour
TTL_AFTER_FINISHED_SECONDS = 86400


class WarmCacheKubectl(Protocol):
    def run(self, args: list[str]) -> int: ...


@dataclass(frozen=True)
class WarmCachePlan:
    namespace: str
    families: tuple[str, ...]
    objects: tuple[dict[str, Any], ...]

    @property
    def job_names(self) -> list[str]:
        return [o["metadata"]["name"] for o in self.objects if o["kind"] == "Job"]

    def to_yaml(self) -> str:
        return yaml.safe_dump_all(list(self.objects), sort_keys=False)


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise OperatorError(f"{path} not found; run make update-manifests first")
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _one(objects: list[dict[str, Any]], kind: str, path: Path) -> dict[str, Any]:
    found = [o for o in objects if o.get("kind") == kind]
    if len(found) != 1:
        raise OperatorError(f"{path}: expected one {kind}, found {len(found)}")
    return found[0]


def families_of(nodepool: dict[str, Any]) -> tuple[str, ...]:
    for requirement in nodepool["spec"]["template"]["spec"].get("requirements", []):
        if requirement.get("key") == FAMILY_LABEL and requirement.get("operator") == "In":
            return tuple(requirement["values"])
    raise OperatorError(f"NodePool {nodepool['metadata']['name']}: no '{FAMILY_LABEL} In [...]' requirement")


def _publisher_from_restore(restore: dict[str, Any]) -> dict[str, Any]:
    """readonly manifests have no publish sidecar: build the publisher from the restore container."""
    publisher = copy.deepcopy(restore)
    publisher["name"] = names.COMPILE_CACHE_PUBLISH_CONTAINER
    publisher["command"] = [*restore["command"][:-1], "publish"]
    publisher["env"] = [e for e in restore["env"] if e["name"] != "COMPILE_CACHE_RESTORE_DEADLINE_SECONDS"]
    publisher["env"].append({"name": "COMPILE_CACHE_HEALTH_URL", "value": f"http://127.0.0.1:{names.VLLM_PORT}/health"})
    publisher["volumeMounts"] = [
        {**m, "readOnly": True} if m["name"] == "vllm-cache" else m for m in restore["volumeMounts"] if m["name"] != "tmp"]
    publisher["resources"] = {"requests": {"cpu": "25m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
    return publisher


def plan(manifests_dir: Path, *, publish_mode: str) -> WarmCachePlan:
    """The Jobs (and, in readonly mode, the writer ServiceAccount) for the generated manifests."""
    vllm_path, nodes_path = manifests_dir / VLLM_FILE, manifests_dir / NODES_FILE
    deployment = _one(_load(vllm_path), "Deployment", vllm_path)
    families = families_of(_one(_load(nodes_path), "NodePool", nodes_path))
    namespace = deployment["metadata"]["namespace"]
    template = deployment["spec"]["template"]
    pod = template["spec"]
    init = {c["name"]: c for c in pod.get("initContainers", [])}
    if names.COMPILE_CACHE_RESTORE_CONTAINER not in init:
        raise OperatorError(f"{vllm_path}: the Deployment has no {names.COMPILE_CACHE_RESTORE_CONTAINER} init container; "
                            "set coldstart:compileCacheS3=true and run make update-manifests")
    publisher = init.get(names.COMPILE_CACHE_PUBLISH_CONTAINER)
    if (publisher is not None) != (publish_mode == "pods"):
        raise OperatorError(f"{vllm_path} was generated with another coldstart:compileCachePublish than {publish_mode!r}; "
                            "run make update-manifests")
    publisher = copy.deepcopy(publisher) if publisher is not None else _publisher_from_restore(init[names.COMPILE_CACHE_RESTORE_CONTAINER])
    publisher.pop("restartPolicy", None)
    publisher["command"] = [*publisher["command"], "--once"]

    [vllm] = [c for c in pod["containers"] if c["name"] == "vllm"]
    sidecar = {k: v for k, v in copy.deepcopy(vllm).items() if k not in ("startupProbe", "readinessProbe", "livenessProbe")}
    sidecar["restartPolicy"] = "Always"  # native sidecar: stopped once the publisher has exited

    service_account = pod["serviceAccountName"]
    objects: list[dict[str, Any]] = []
    if publish_mode == "readonly":
        service_account = names.COMPILE_CACHE_WRITER_SERVICE_ACCOUNT
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
                        "metadata": {"name": service_account, "namespace": namespace,
                                     "labels": {"app.kubernetes.io/part-of": "vllm-coldstart"}}})
    for family in families:
        labels = {"app": names.WARM_CACHE_APP_LABEL, "app.kubernetes.io/part-of": "vllm-coldstart",
                  "vllm-coldstart/gpu-family": family}
        spec = copy.deepcopy(pod)
        spec["serviceAccountName"] = service_account
        spec["restartPolicy"] = "Never"
        spec["nodeSelector"] = {**spec.get("nodeSelector", {}), FAMILY_LABEL: family}
        spec["initContainers"] = [c for c in spec.get("initContainers", []) if c["name"] != names.COMPILE_CACHE_PUBLISH_CONTAINER]
        spec["initContainers"].append(sidecar)
        spec["containers"] = [publisher]
        objects.append({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{names.WARM_CACHE_APP_LABEL}-{family}", "namespace": namespace, "labels": labels},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
                     "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_SECONDS,
                     "template": {"metadata": {"labels": labels}, "spec": spec}},
        })
    return WarmCachePlan(namespace=namespace, families=families, objects=tuple(objects))


def apply(kubectl: WarmCacheKubectl, warm: WarmCachePlan, manifest_file: Path) -> None:
    """Replace earlier warm-up Jobs (a Job's pod template is immutable) and create these."""
    manifest_file.write_text(warm.to_yaml())
    code = kubectl.run(["delete", "job", "-n", warm.namespace, *warm.job_names, "--ignore-not-found"])
    if code != 0:
        raise OperatorError(f"kubectl delete job failed (exit {code}); see its message above")
    code = kubectl.run(["apply", "-f", str(manifest_file)])
    if code != 0:
        raise OperatorError(f"kubectl apply failed (exit {code}); see its message above")
