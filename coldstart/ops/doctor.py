"""doctor: the runbook's troubleshooting steps as checks. Each prints pass/fail/skip and the fix.

Order follows the data: the published parameter -> the snapshot it names -> the generated
manifests -> (with kubectl) what the cluster applied, the node's volume, the pod's image pull and
the pod's model-read identity. Checks that need the cluster are skipped, not failed, without
kubectl or a kubeconfig.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from coldstart.ops.aws import stack_output
from coldstart.ops.errors import OperatorError, describe_expected_error
from coldstart.ops.kubectl import KubectlLike
from coldstart.ops.smoke import ModelStarting, SmokeFailed, SmokeResult, format_result
from coldstart.ops.snapshots import published_snapshot_id
from k8s_charts.inputs import SNAPSHOT_ID
from settings import names, parameter_store
from settings.config import AppConfig

PASS, FAIL, SKIP, WARN = "pass", "fail", "skip", "warn"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
APP_LABEL = "app"
# EKS Pod Identity's webhook injects this into every container of a pod whose service account
# has an association: its presence shows the running pod actually received the role.
POD_IDENTITY_ENV = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
ALREADY_PRESENT = "already present on machine"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str
    fix: str = ""


class _Skip(Exception):
    pass


class _Warn(Exception):
    pass


class _Fail(Exception):
    def __init__(self, detail: str, fix: str):
        super().__init__(detail)
        self.fix = fix


@dataclass
class DoctorContext:
    config: AppConfig
    ssm: Any
    ec2: Any
    cfn: Any
    eks: Any
    manifests_dir: Path
    kubectl: KubectlLike | None
    kubectl_missing: str = ""
    # One streamed completion against the served model (coldstart.ops.smoke through a port-forward);
    # the CLI builds it when kubectl can reach the cluster.
    smoke: Callable[[], SmokeResult] | None = None
    _published: str | None = field(default=None, init=False)

    @property
    def parameter(self) -> str:
        return self.config.snapshotParameterName

    def published(self) -> str:
        if self._published is None:
            value = published_snapshot_id(self.ssm, self.parameter)
            if value is None:
                raise _Skip(f"{self.parameter} is not set")
            self._published = value
        return self._published

    def cluster(self) -> KubectlLike:
        if self.kubectl is None:
            raise _Skip(f"needs the cluster: {self.kubectl_missing}")
        return self.kubectl


# --- checks: each returns the pass detail, or raises _Fail(detail, fix) / _Skip(reason) ---------


def check_parameter(ctx: DoctorContext) -> str:
    value = published_snapshot_id(ctx.ssm, ctx.parameter)
    if value is None:
        raise _Fail(f"{ctx.parameter} is not set in {ctx.ssm.meta.region_name}", "build and publish one: make create-snapshot")
    if not SNAPSHOT_ID.fullmatch(value):
        raise _Fail(f"{ctx.parameter} = {value!r} is not a snapshot ID", "republish: make create-snapshot (or make rollback)")
    ctx._published = value
    return f"{ctx.parameter} = {value}"


def check_metadata(ctx: DoctorContext) -> str:
    """The same reading the charts do (k8s_charts.published): stale metadata is looked up in history."""
    from k8s_charts.inputs import ChartInputError
    from k8s_charts.published import read_published

    ctx.published()
    try:
        published = read_published(ctx.ssm, ctx.parameter)
    except ChartInputError as exc:
        raise _Fail(str(exc), "republish: make create-snapshot (or make rollback)") from None
    if published is None or not published.has_metadata:
        raise _Fail("; ".join(published.notes if published else ()) or "no metadata",
                    "re-run make create-snapshot (the pipeline writes the metadata with the ID)")
    if published.notes:
        raise _Warn("; ".join(published.notes))
    images = ", ".join(i.reference for i in published.images)
    return f"Bottlerocket {published.bottlerocket_version or '?'}, images: {images or 'none listed'}"


def check_cuda(ctx: DoctorContext) -> str:
    """The pipeline's CUDA gate, again, for the published build: its recorded requirement against the
    NVIDIA driver the version table gives for its Bottlerocket release (a table refresh may change it)."""
    import json

    from lambdas.snapshot_pipeline.core import cuda_gate
    from lambdas.snapshot_pipeline.core.image_config import CudaRequirement, parse_version

    ctx.published()
    try:
        metadata = json.loads(parameter_store.get(ctx.ssm, names.metadata_parameter_name(ctx.parameter)) or "")
    except (ClientError, ValueError):
        raise _Skip("no readable metadata (see the check above)") from None
    verdicts = metadata.get("cuda")
    if not verdicts:
        raise _Warn("the published build predates the CUDA gate: rebuild (make create-snapshot) to have it checked")
    required = sorted({v["required"] for v in verdicts if v.get("required")}, key=parse_version)
    # The pipeline's own verdict function, on the recorded requirement and today's version table.
    verdict = cuda_gate.check(CudaRequirement(required[-1] if required else None, "the published metadata"),
                              bottlerocket_version=metadata.get("bottlerocketVersion", "?"),
                              kubernetes_version=metadata.get("kubernetesVersion", "?"), image="the published image")
    if verdict.status == cuda_gate.INCOMPATIBLE:
        raise _Fail(verdict.message, "roll back (make rollback) and publish an image built for that driver")
    if verdict.status == cuda_gate.UNKNOWN:
        raise _Warn(verdict.message)
    return verdict.message


def check_snapshot(ctx: DoctorContext) -> str:
    snapshot_id = ctx.published()
    try:
        snapshot = ctx.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"):
            raise
        raise _Fail(f"{snapshot_id} does not exist", "make rollback (to the previous snapshot) or make create-snapshot") from None
    if snapshot["State"] != "completed":
        raise _Fail(f"{snapshot_id} is {snapshot['State']}", "wait for it to complete, or make rollback")
    return f"{snapshot_id} completed, {snapshot.get('VolumeSize', '?')} GiB"


def generated_snapshot_ids(manifests_dir: Path) -> dict[str, list[str]]:
    """EC2NodeClass name -> the snapshotIDs of its block device mappings, from dist/*.k8s.yaml."""
    found: dict[str, list[str]] = {}
    for path in sorted(manifests_dir.glob("*.k8s.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "EC2NodeClass":
                found[doc["metadata"]["name"]] = nodeclass_snapshot_ids(doc)
    return found


def nodeclass_snapshot_ids(doc: dict[str, Any]) -> list[str]:
    mappings = doc.get("spec", {}).get("blockDeviceMappings", []) or []
    return [m["ebs"]["snapshotID"] for m in mappings if m.get("ebs", {}).get("snapshotID")]


def check_manifests(ctx: DoctorContext) -> str:
    snapshot_id = ctx.published()
    classes = generated_snapshot_ids(ctx.manifests_dir)
    if not classes:
        raise _Fail(f"no EC2NodeClass in {ctx.manifests_dir}/*.k8s.yaml", "make update-manifests")
    ids = classes.get(names.GPU_NODECLASS) or [i for v in classes.values() for i in v]
    if snapshot_id not in ids:
        raise _Fail(f"generated EC2NodeClass references {', '.join(ids) or 'no snapshot'}, not {snapshot_id}",
                    "make update-manifests && make deploy-apps")
    return f"{_shown(ctx.manifests_dir)}/ EC2NodeClass {names.GPU_NODECLASS} -> {snapshot_id}"


def _shown(path: Path) -> str:
    """The folder as the operator would type it: relative to the working directory when inside it
    (``dist``), else in full (the rehearsal's temporary folder is not ./dist)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def check_applied_nodeclass(ctx: DoctorContext) -> str:
    kubectl, snapshot_id = ctx.cluster(), ctx.published()
    doc = kubectl.get_json("get", "ec2nodeclass", names.GPU_NODECLASS)
    ids = nodeclass_snapshot_ids(doc)
    if snapshot_id not in ids:
        raise _Fail(f"cluster's EC2NodeClass {names.GPU_NODECLASS} references {', '.join(ids) or 'no snapshot'}", "make deploy-apps")
    return f"cluster's EC2NodeClass {names.GPU_NODECLASS} -> {snapshot_id}"


def _instance_id(provider_id: str) -> str:
    return provider_id.rsplit("/", 1)[-1]  # aws:///us-west-2a/i-0123...


def check_gpu_nodes(ctx: DoctorContext) -> str:
    kubectl, snapshot_id = ctx.cluster(), ctx.published()
    nodes = kubectl.get_json("get", "nodes", "-l", f"{NODEPOOL_LABEL}={names.GPU_NODEPOOL}")["items"]
    if not nodes:
        raise _Skip(f"no node of NodePool {names.GPU_NODEPOOL} is running (scale the vLLM Deployment up to get one)")
    wrong = []
    for node in nodes:
        instance = _instance_id(node.get("spec", {}).get("providerID", ""))
        reservations = ctx.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
        volume_ids = [m["Ebs"]["VolumeId"] for r in reservations for i in r["Instances"] for m in i.get("BlockDeviceMappings", []) if "Ebs" in m]
        volumes = ctx.ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"] if volume_ids else []
        if snapshot_id not in {v.get("SnapshotId") for v in volumes}:
            wrong.append(f"{node['metadata']['name']} ({instance}: {', '.join(sorted({v.get('SnapshotId') or '-' for v in volumes}))})")
    if wrong:
        raise _Fail(f"GPU node(s) not restored from {snapshot_id}: {'; '.join(wrong)}",
                    "they drift to the new snapshot at the NodePool's disruption budget; or `kubectl delete nodeclaim <name>`")
    return f"{len(nodes)} GPU node(s) have a volume from {snapshot_id}"


def _vllm_pods(ctx: DoctorContext, kubectl: KubectlLike) -> list[dict[str, Any]]:
    pods = kubectl.get_json("get", "pods", "-n", ctx.config.vllmNamespace, "-l", f"{APP_LABEL}={names.VLLM_APP_LABEL}")["items"]
    if not pods:
        raise _Skip(f"no vLLM pod in namespace {ctx.config.vllmNamespace}")
    return pods


def check_image_present(ctx: DoctorContext) -> str:
    kubectl = ctx.cluster()
    pods = {p["metadata"]["name"] for p in _vllm_pods(ctx, kubectl)}
    events = kubectl.get_json("get", "events", "-n", ctx.config.vllmNamespace, "--field-selector", "involvedObject.kind=Pod")["items"]
    pulls = [e for e in events if e.get("involvedObject", {}).get("name") in pods and e.get("reason") in ("Pulled", "Pulling")]
    if not pulls:
        raise _Skip("no image pull events for the vLLM pods (events expire after about an hour)")
    pulled = [e for e in pulls if e.get("reason") == "Pulling" or ALREADY_PRESENT not in e.get("message", "")]
    if pulled:
        raise _Fail(
            f"pod {pulled[0]['involvedObject']['name']} pulled its image: {pulled[0].get('message', '').strip()}",
            "the node's volume is not from the snapshot, or the Deployment's image is not the cached one: "
            "make update-manifests && make deploy-apps",
        )
    return f"{len(pulls)} pull event(s), all '{ALREADY_PRESENT}'"


def check_model_role(ctx: DoctorContext) -> str:
    kubectl = ctx.cluster()
    ns, sa = ctx.config.vllmNamespace, ctx.config.vllmServiceAccount
    kubectl.get_json("get", "serviceaccount", "-n", ns, sa)  # exists, or OperatorError naming it
    expected = stack_output(ctx.cfn, names.CLUSTER_STACK, names.OUTPUT_VLLM_ROLE_ARN)
    associations = ctx.eks.list_pod_identity_associations(clusterName=ctx.config.clusterName, namespace=ns, serviceAccount=sa)["associations"]
    roles = [
        ctx.eks.describe_pod_identity_association(clusterName=ctx.config.clusterName, associationId=a["associationId"])["association"]["roleArn"]
        for a in associations
    ]
    if expected not in roles:
        raise _Fail(f"service account {ns}/{sa} is associated with {', '.join(roles) or 'no role'}, not {expected}",
                    f"redeploy the cluster stack ({names.CLUSTER_STACK}), which creates the Pod Identity association")
    missing = [p["metadata"]["name"] for p in _vllm_pods(ctx, kubectl) if not _has_pod_identity(p)]
    if missing:
        raise _Fail(f"pod(s) {', '.join(missing)} started without Pod Identity credentials",
                    f"restart them after the association exists: kubectl rollout restart deployment -n {ns}")
    return f"{ns}/{sa} -> {expected}"


def _has_pod_identity(pod: dict[str, Any]) -> bool:
    containers = pod.get("spec", {}).get("containers", [])
    return bool(containers) and all(any(e.get("name") == POD_IDENTITY_ENV for e in c.get("env", [])) for c in containers)


def check_serving(ctx: DoctorContext) -> str:
    ctx.cluster()
    if ctx.smoke is None:
        raise _Skip("no smoke test configured")
    _vllm_pods(ctx, ctx.cluster())
    try:
        result = ctx.smoke()
    except ModelStarting as starting:
        raise _Warn(f"vLLM is still starting: {starting}") from None
    except SmokeFailed as failed:
        raise _Fail(str(failed), f"kubectl logs -n {ctx.config.vllmNamespace} -l {APP_LABEL}={names.VLLM_APP_LABEL}; "
                                 "then make smoke") from None
    return format_result(result)


CHECKS: list[tuple[str, Callable[[DoctorContext], str]]] = [
    ("snapshot parameter is set", check_parameter),
    ("metadata matches the snapshot ID", check_metadata),
    ("snapshot exists and is completed", check_snapshot),
    ("GPU driver runs the image's CUDA", check_cuda),
    ("generated EC2NodeClass uses it", check_manifests),
    ("cluster's EC2NodeClass uses it", check_applied_nodeclass),
    ("GPU nodes restored from it", check_gpu_nodes),
    ("vLLM image was already present", check_image_present),
    ("vLLM pods carry the model-read role", check_model_role),
    ("model answers a chat completion", check_serving),
]


def run_checks(ctx: DoctorContext) -> Iterator[CheckResult]:
    for name, check in CHECKS:
        try:
            yield CheckResult(name, PASS, check(ctx))
        except _Skip as skip:
            yield CheckResult(name, SKIP, str(skip))
        except _Warn as warn:
            yield CheckResult(name, WARN, str(warn))
        except _Fail as fail:
            yield CheckResult(name, FAIL, str(fail), fail.fix)
        except (OperatorError, ClientError) as exc:
            # One broken check (a denied call, a missing stack) must not hide the others' results.
            # Credential and endpoint errors (BotoCoreError) propagate: they would fail every check.
            yield CheckResult(name, FAIL, describe_expected_error(exc) or str(exc), "see the message")
