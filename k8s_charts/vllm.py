"""The vLLM workload: Namespace, ServiceAccount, Deployment, Service, PodDisruptionBudget, NetworkPolicy."""

from __future__ import annotations

import cdk8s
from cdk8s_plus_30 import k8s
from constructs import Construct

from k8s_charts.props import (
    CLIENT_NAMESPACE_LABEL,
    COMPILE_CACHE_HOST_PATH,
    COMPILE_CACHE_SCRIPT,
    VLLM_CACHE_ROOT,
    VLLM_UID,
    VLLM_USER,
    Probe,
    VllmProps,
)
from settings import names

PART_OF = {"app.kubernetes.io/part-of": "vllm-coldstart"}
# `app: vllm` is the selector (names.VLLM_APP_LABEL: the CLI finds the pods with -l app=vllm).
SELECTOR = {"app": names.VLLM_APP_LABEL}
POD_LABELS = {**SELECTOR, "app.kubernetes.io/name": names.VLLM_APP_LABEL}
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
PORT_NAME = "http"
TMP_SIZE = "10Gi"  # HOME, FlashInfer JIT caches, downloaded tokenizer files
# torch.compile's own caches, beside vLLM's: on the node's data volume when compileCacheOnNode is on.
INDUCTOR_CACHE_DIR = f"{VLLM_CACHE_ROOT}/torchinductor"
TRITON_CACHE_DIR = f"{VLLM_CACHE_ROOT}/triton"
# The compile-cache sync script: a ConfigMap mounted read-only, run by the image's python3.
SYNC_CONFIGMAP = "vllm-compile-cache-sync"
SYNC_DIR = "/opt/coldstart"
SYNC_COMMAND = ["python3", f"{SYNC_DIR}/{COMPILE_CACHE_SCRIPT.name}"]
RESTORE_DEADLINE_SECONDS = 120  # a slow S3 never holds vLLM back longer than this; vLLM compiles instead


def cache_permissions_command(path: str = VLLM_CACHE_ROOT, uid: int = VLLM_UID) -> str:
    """Hand the kubelet-created hostPath directory (root:root 0755) to the vLLM user, idempotently.

    Needs CAP_CHOWN only: chmod runs while root still owns the directory (an owner needs no
    capability), and only then chown. On a restart the directory already belongs to ``uid``, so chmod
    is skipped (it would need CAP_FOWNER); chown to the same owner still needs CAP_CHOWN, nothing more.
    tests/real/test_pod_kernel.py runs this command from the synthesized manifest under the kernel.
    """
    return (f'd={path}; if [ "$(stat -c %u "$d")" != {uid} ]; then chmod 0750 "$d" || exit 1; fi; '
            f'chown {uid}:{uid} "$d"')


def _non_root() -> k8s.SecurityContext:
    return k8s.SecurityContext(run_as_non_root=True, run_as_user=VLLM_UID, run_as_group=VLLM_UID,
                                allow_privilege_escalation=False, read_only_root_filesystem=True,
                                capabilities=k8s.Capabilities(drop=["ALL"]))


def compile_cache_containers(props: VllmProps, aws_env: list[k8s.EnvVar]) -> list[k8s.Container]:
    """The restore init container and (compileCachePublish=pods) the publish native sidecar.

    Both run the cached vLLM image (its python3 and boto3; no other image to pull) as the vLLM user,
    with a read-only root file system and no capabilities. The publisher mounts the cache read-only.
    """
    assert props.compile_cache_s3_uri is not None
    env = [
        k8s.EnvVar(name="COMPILE_CACHE_S3_URI", value=props.compile_cache_s3_uri),
        k8s.EnvVar(name="COMPILE_CACHE_MAX_BYTES", value=str(props.compile_cache_max_bytes)),
        k8s.EnvVar(name="VLLM_CACHE_ROOT", value=VLLM_CACHE_ROOT),
        k8s.EnvVar(name="PYTHONDONTWRITEBYTECODE", value="1"),
        k8s.EnvVar(name="HOME", value="/tmp"),
        # the image has no passwd entry for VLLM_UID (tests/real/facts): anything asking getpass.getuser() reads these
        k8s.EnvVar(name="USER", value=VLLM_USER),
        k8s.EnvVar(name="LOGNAME", value=VLLM_USER),
        *aws_env,
    ]
    script = k8s.VolumeMount(name="compile-cache-sync", mount_path=SYNC_DIR, read_only=True)
    restore = k8s.Container(
        name=names.COMPILE_CACHE_RESTORE_CONTAINER, image=props.image, image_pull_policy="IfNotPresent",
        command=[*SYNC_COMMAND, "restore"],
        env=[*env, k8s.EnvVar(name="COMPILE_CACHE_RESTORE_DEADLINE_SECONDS", value=str(RESTORE_DEADLINE_SECONDS))],
        volume_mounts=[k8s.VolumeMount(name="vllm-cache", mount_path=VLLM_CACHE_ROOT), script,
                       k8s.VolumeMount(name="tmp", mount_path="/tmp")],
        resources=k8s.ResourceRequirements(requests={"cpu": _quantity("500m"), "memory": _quantity("256Mi")},
                                           limits={"memory": _quantity("512Mi")}),
        security_context=_non_root(),
    )
    if not props.compile_cache_publish:
        return [restore]
    publish = k8s.Container(
        name=names.COMPILE_CACHE_PUBLISH_CONTAINER, image=props.image, image_pull_policy="IfNotPresent",
        # Native sidecar: starts after the restore, runs beside vLLM, is stopped after it.
        restart_policy="Always",
        command=[*SYNC_COMMAND, "publish"],
        env=[*env, k8s.EnvVar(name="COMPILE_CACHE_HEALTH_URL", value=f"http://127.0.0.1:{names.VLLM_PORT}/health")],
        # /tmp (its HOME) writable, as for every process of UID 1000 on the read-only root file system
        volume_mounts=[k8s.VolumeMount(name="vllm-cache", mount_path=VLLM_CACHE_ROOT, read_only=True), script,
                       k8s.VolumeMount(name="tmp", mount_path="/tmp")],
        resources=k8s.ResourceRequirements(requests={"cpu": _quantity("25m"), "memory": _quantity("64Mi")},
                                           limits={"memory": _quantity("512Mi")}),
        security_context=_non_root(),
    )
    return [restore, publish]


def _http_probe(probe: Probe) -> k8s.Probe:
    return k8s.Probe(
        http_get=k8s.HttpGetAction(path=probe.path, port=k8s.IntOrString.from_string(PORT_NAME)),
        initial_delay_seconds=probe.initial_delay_seconds or None,
        period_seconds=probe.period_seconds,
        timeout_seconds=probe.timeout_seconds,
        failure_threshold=probe.failure_threshold,
    )


def _quantity(value: str | int) -> k8s.Quantity:
    return k8s.Quantity.from_number(value) if isinstance(value, int) else k8s.Quantity.from_string(value)


def aws_env(props: VllmProps) -> list[k8s.EnvVar]:
    """The region is explicit (the Python and C++ SDKs read either name), and IMDS is off: hop limit 1
    blocks it from pods anyway, and an SDK that tries it only waits, then falls back to us-east-1.
    Credentials come from Pod Identity/IRSA, never IMDS."""
    return [
        k8s.EnvVar(name="AWS_REGION", value=props.region),
        k8s.EnvVar(name="AWS_DEFAULT_REGION", value=props.region),
        k8s.EnvVar(name="AWS_EC2_METADATA_DISABLED", value="true"),
    ]


def vllm_env(props: VllmProps) -> list[k8s.EnvVar]:
    return [
        k8s.EnvVar(name="RUNAI_STREAMER_CONCURRENCY", value=str(props.streamer_concurrency)),
        k8s.EnvVar(name="VLLM_CACHE_ROOT", value=VLLM_CACHE_ROOT),
        k8s.EnvVar(name="TORCHINDUCTOR_CACHE_DIR", value=INDUCTOR_CACHE_DIR),
        k8s.EnvVar(name="TRITON_CACHE_DIR", value=TRITON_CACHE_DIR),
        # The image's HOME (/root) is not writable by a non-root user; caches go to the tmp volume.
        k8s.EnvVar(name="HOME", value="/tmp"),
        # The image's passwd has no entry for VLLM_UID: getpass.getuser() reads these first.
        k8s.EnvVar(name="USER", value=VLLM_USER),
        k8s.EnvVar(name="LOGNAME", value=VLLM_USER),
        k8s.EnvVar(name="VLLM_NO_USAGE_STATS", value="1"),
        k8s.EnvVar(name="DO_NOT_TRACK", value="1"),
        # runai-model-streamer >= 0.17 prints its per-load timing line only with this set (its
        # __init__.py); `coldstart report` reads the streamed size and rate from it.
        k8s.EnvVar(name="RUNAI_STREAMER_LOG_TO_STDERR", value="1"),
        *aws_env(props),
    ]


def scratch_volumes(props: VllmProps) -> list[k8s.Volume]:
    return [
        # PyTorch/NCCL shared memory; the container runtime's 64 MiB default is too small.
        k8s.Volume(name="dshm", empty_dir=k8s.EmptyDirVolumeSource(medium="Memory", size_limit=_quantity(props.shm_size))),
        k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(size_limit=_quantity(TMP_SIZE))),
    ]


def cache_volume(props: VllmProps) -> k8s.Volume:
    """vLLM's cache root: on the node's data volume (compileCacheOnNode) or in the pod."""
    if props.compile_cache_on_node:
        # torch.compile results survive the pod on the node's data volume (/local on Bottlerocket):
        # the next pod with the same cache key on this node skips compilation.
        return k8s.Volume(name="vllm-cache", host_path=k8s.HostPathVolumeSource(
            path=COMPILE_CACHE_HOST_PATH, type="DirectoryOrCreate"))
    return k8s.Volume(name="vllm-cache", empty_dir=k8s.EmptyDirVolumeSource(size_limit=_quantity(TMP_SIZE)))


def sync_script_volume() -> k8s.Volume:
    return k8s.Volume(name="compile-cache-sync", config_map=k8s.ConfigMapVolumeSource(name=SYNC_CONFIGMAP, default_mode=0o444))


def cache_permissions_container(props: VllmProps) -> k8s.Container:
    """kubelet creates a DirectoryOrCreate hostPath root:root 0755 and applies no fsGroup to hostPath
    volumes (pkg/volume/hostpath/host_path.go), so the vLLM user cannot write it. This init container
    hands it over as root with only CAP_CHOWN (see cache_permissions_command) and reuses the cached
    vLLM image (no extra pull)."""
    return k8s.Container(
        name="cache-permissions", image=props.image, image_pull_policy="IfNotPresent",
        command=["sh", "-c", cache_permissions_command()],
        volume_mounts=[k8s.VolumeMount(name="vllm-cache", mount_path=VLLM_CACHE_ROOT)],
        resources=k8s.ResourceRequirements(requests={"cpu": _quantity("50m"), "memory": _quantity("32Mi")},
                                           limits={"memory": _quantity("32Mi")}),
        security_context=k8s.SecurityContext(
            run_as_user=0, run_as_group=0, run_as_non_root=False, allow_privilege_escalation=False,
            read_only_root_filesystem=True, capabilities=k8s.Capabilities(drop=["ALL"], add=["CHOWN"])),
    )


def init_containers(props: VllmProps) -> list[k8s.Container]:
    """In start order: the cache-permissions fix, then the compile-cache restore (and publish sidecar)."""
    containers = [cache_permissions_container(props)] if props.compile_cache_on_node else []
    if props.compile_cache_s3_uri is not None:
        containers += compile_cache_containers(props, aws_env(props))
    return containers


def vllm_container(props: VllmProps) -> k8s.Container:
    gpu = {names.GPU_RESOURCE: _quantity(1)}
    return k8s.Container(
        name="vllm",
        image=props.image,
        image_pull_policy="IfNotPresent",  # the image is on the restored data volume
        command=["vllm", "serve"],
        args=props.args,
        ports=[k8s.ContainerPort(name=PORT_NAME, container_port=names.VLLM_PORT, protocol="TCP")],
        env=vllm_env(props),
        resources=k8s.ResourceRequirements(
            requests={"cpu": _quantity(props.cpu_request), "memory": _quantity(props.memory_request), **gpu},
            limits={"memory": _quantity(props.memory_limit), **gpu},
        ),
        volume_mounts=[
            k8s.VolumeMount(name="dshm", mount_path="/dev/shm"),
            k8s.VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.VolumeMount(name="vllm-cache", mount_path=VLLM_CACHE_ROOT),
        ],
        startup_probe=_http_probe(props.probes.startup),
        readiness_probe=_http_probe(props.probes.readiness),
        liveness_probe=_http_probe(props.probes.liveness),
        # Everything vLLM writes goes to mounted volumes: /tmp (HOME, JIT caches), /dev/shm and the cache root.
        security_context=k8s.SecurityContext(
            allow_privilege_escalation=False, read_only_root_filesystem=True,
            capabilities=k8s.Capabilities(drop=["ALL"])),
    )


def pod_spec(props: VllmProps) -> k8s.PodSpec:
    volumes = [*scratch_volumes(props), cache_volume(props)]
    if props.compile_cache_s3_uri is not None:
        volumes.append(sync_script_volume())
    return k8s.PodSpec(
        service_account_name=props.service_account,
        automount_service_account_token=False,  # vLLM never calls the Kubernetes API
        node_selector={"karpenter.sh/nodepool": names.GPU_NODEPOOL},
        tolerations=[k8s.Toleration(key=names.GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")],
        # Never two vLLM pods on one node: a node is one failure (and one spot interruption),
        # and replicas sharing it would share its GPUs' and NIC's bandwidth at start.
        affinity=k8s.Affinity(pod_anti_affinity=k8s.PodAntiAffinity(
            required_during_scheduling_ignored_during_execution=[k8s.PodAffinityTerm(
                label_selector=k8s.LabelSelector(match_labels=SELECTOR),
                topology_key="kubernetes.io/hostname")])),
        security_context=k8s.PodSecurityContext(
            run_as_non_root=True, run_as_user=VLLM_UID, run_as_group=VLLM_UID, fs_group=VLLM_UID,
            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")),
        init_containers=init_containers(props) or None,
        containers=[vllm_container(props)],
        volumes=volumes,
    )


def deployment_spec(props: VllmProps) -> k8s.DeploymentSpec:
    return k8s.DeploymentSpec(
        replicas=props.replicas,
        revision_history_limit=3,
        selector=k8s.LabelSelector(match_labels=SELECTOR),
        # Surge one pod (one more GPU node) so a rollout never drops serving capacity.
        strategy=k8s.DeploymentStrategy(type="RollingUpdate", rolling_update=k8s.RollingUpdateDeployment(
            max_surge=k8s.IntOrString.from_number(1), max_unavailable=k8s.IntOrString.from_number(0))),
        template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=POD_LABELS), spec=pod_spec(props)),
    )


def service_spec() -> k8s.ServiceSpec:
    return k8s.ServiceSpec(
        type="ClusterIP",
        selector=SELECTOR,
        ports=[k8s.ServicePort(name=PORT_NAME, port=names.VLLM_PORT, target_port=k8s.IntOrString.from_string(PORT_NAME),
                               protocol="TCP")],
    )


def disruption_budget_spec() -> k8s.PodDisruptionBudgetSpec:
    """One pod at a time may be evicted (node drift, drains). With one replica this still lets
    Karpenter replace the node (a short outage: the cold start this project makes fast) instead of
    blocking the drift forever; stuck unhealthy pods never block it."""
    return k8s.PodDisruptionBudgetSpec(
        max_unavailable=k8s.IntOrString.from_number(1),
        selector=k8s.LabelSelector(match_labels=SELECTOR),
        unhealthy_pod_eviction_policy="AlwaysAllow")


def network_policy_spec() -> k8s.NetworkPolicySpec:
    """Only vLLM's own namespace and namespaces labelled vllm-coldstart/vllm-client=true reach the API
    port; kubelet's probes come from the node, which NetworkPolicy always admits (Kubernetes docs,
    "Network Policies"). Enforced by the VPC CNI's network policy agent (enabled by the cluster
    stack). Egress stays open: S3, Pod Identity and DNS."""
    return k8s.NetworkPolicySpec(
        pod_selector=k8s.LabelSelector(match_labels=SELECTOR),
        policy_types=["Ingress"],
        ingress=[k8s.NetworkPolicyIngressRule(
            from_=[k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector()),
                   k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector(
                       match_labels={CLIENT_NAMESPACE_LABEL: "true"}))],
            ports=[k8s.NetworkPolicyPort(port=k8s.IntOrString.from_string(PORT_NAME), protocol="TCP")])])


def namespace_labels(props: VllmProps) -> dict[str, str]:
    # Pod Security: a hostPath volume (the node compile cache) is only allowed at "privileged";
    # without it the pod meets "baseline". "restricted" is audited either way.
    level = "privileged" if props.compile_cache_on_node else "baseline"
    return {"pod-security.kubernetes.io/enforce": level, "pod-security.kubernetes.io/audit": "restricted"}


def service_account_annotations(props: VllmProps) -> dict[str, str] | None:
    # Pod Identity (default): the cluster stack associates the role with (namespace, service
    # account); nothing to annotate. IRSA: the annotation names the role to assume.
    return {IRSA_ANNOTATION: props.role_arn} if props.identity == "irsa" and props.role_arn else None


class VllmChart(cdk8s.Chart):
    """The objects in the order they are applied (the order of the synthesized file)."""

    def __init__(self, scope: Construct, id: str, *, props: VllmProps) -> None:
        super().__init__(scope, id, labels=PART_OF, disable_resource_name_hashes=True)

        def meta(name: str, annotations: dict[str, str] | None = None) -> k8s.ObjectMeta:
            return k8s.ObjectMeta(name=name, namespace=props.namespace, labels=POD_LABELS, annotations=annotations)

        k8s.KubeNamespace(self, "namespace", metadata=k8s.ObjectMeta(name=props.namespace, labels=namespace_labels(props)))
        k8s.KubeServiceAccount(self, "service-account", automount_service_account_token=False,
                               metadata=meta(props.service_account, annotations=service_account_annotations(props)))
        if props.compile_cache_s3_uri is not None:
            # The S3-shared compile cache (docs/compile-cache.md): restored before vLLM starts, published
            # after it is Ready. The script is this repository's file, carried by a ConfigMap.
            k8s.KubeConfigMap(self, "compile-cache-sync", metadata=meta(SYNC_CONFIGMAP),
                              data={COMPILE_CACHE_SCRIPT.name: COMPILE_CACHE_SCRIPT.read_text()})
        app = names.VLLM_APP_LABEL
        k8s.KubeDeployment(self, "deployment", metadata=meta(app), spec=deployment_spec(props))
        k8s.KubeService(self, "service", metadata=meta(app), spec=service_spec())
        k8s.KubePodDisruptionBudget(self, "pdb", metadata=meta(app), spec=disruption_budget_spec())
        k8s.KubeNetworkPolicy(self, "network-policy", metadata=meta(app), spec=network_policy_spec())
