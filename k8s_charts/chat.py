"""The demo chat app (apps/chat) next to vLLM: Deployment, ClusterIP Service, NetworkPolicy.

It lives in vLLM's namespace, so vLLM's NetworkPolicy (k8s_charts/vllm.py) already admits it; its own
policy admits ingress only on its HTTP port from the same namespace (``kubectl port-forward`` enters
the pod's network namespace through kubelet, which NetworkPolicy does not filter) and lets it reach
only vLLM's API port and cluster DNS. No IAM role, no token mounted, non-root, read-only root.
"""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from cdk8s_plus_30 import k8s
from constructs import Construct

from k8s_charts.chat_image import checkout_image_tag
from k8s_charts.image import ecr_registry
from settings import names
from settings.config import AppConfig

SELECTOR = {"app": names.CHAT_APP_LABEL}
PART_OF = {"app.kubernetes.io/part-of": "vllm-coldstart"}
PORT_NAME = "http"
CHAT_UID = 10001  # apps/chat/Dockerfile: USER 10001:10001
DNS_PORT = 53
TMP_SIZE = "16Mi"  # counts against the memory limit (medium: Memory)


@dataclass(frozen=True)
class ChatProps:
    namespace: str
    image: str  # <account>.dkr.ecr.<region>.amazonaws.com/<chatRepository>:<tag>
    served_model_name: str
    replicas: int = 1

    @property
    def vllm_base_url(self) -> str:
        return f"http://{names.VLLM_APP_LABEL}.{self.namespace}.svc:{names.VLLM_PORT}"


def resolve_chat(config: AppConfig, *, account: str | None, region: str | None,
                 image_tag: str | None = None) -> tuple[ChatProps | None, tuple[str, ...]]:
    """The chat app's props, or None with the reason as a notice (disabled, or no registry/tag to name)."""
    if not config.chatEnabled:
        return None, ()
    tag = config.chatImageTag or image_tag or checkout_image_tag()
    registry = ecr_registry(account, region)
    if registry is None or tag is None:
        missing = "account/region" if registry is None else "an image tag (not a git checkout; set coldstart:chatImageTag)"
        return None, (f"chat app not synthesized: {missing} unknown, so its private ECR image cannot be named "
                      "(pass --account and --region, or set coldstart:chatEnabled=false)",)
    props = ChatProps(namespace=config.vllmNamespace, image=f"{registry}/{config.chatRepository}:{tag}",
                      served_model_name=config.servedModelName)
    return props, ()


def _container(props: ChatProps) -> k8s.Container:
    http = k8s.IntOrString.from_string(PORT_NAME)
    return k8s.Container(
        name=names.CHAT_APP_LABEL, image=props.image, image_pull_policy="IfNotPresent",
        ports=[k8s.ContainerPort(name=PORT_NAME, container_port=names.CHAT_PORT, protocol="TCP")],
        env=[k8s.EnvVar(name="VLLM_BASE_URL", value=props.vllm_base_url),
             k8s.EnvVar(name="SERVED_MODEL_NAME", value=props.served_model_name),
             k8s.EnvVar(name="CHAT_PORT", value=str(names.CHAT_PORT))],
        # /healthz: the process answers (restart if not); /readyz: vLLM answers too. While vLLM
        # starts the page still loads and says "model starting", so readiness uses /healthz.
        liveness_probe=k8s.Probe(http_get=k8s.HttpGetAction(path="/healthz", port=http), period_seconds=10,
                                 timeout_seconds=2, failure_threshold=3),
        readiness_probe=k8s.Probe(http_get=k8s.HttpGetAction(path="/healthz", port=http), period_seconds=5,
                                  timeout_seconds=2, failure_threshold=2),
        resources=k8s.ResourceRequirements(
            requests={"cpu": k8s.Quantity.from_string("100m"), "memory": k8s.Quantity.from_string("128Mi")},
            limits={"memory": k8s.Quantity.from_string("256Mi")}),
        security_context=k8s.SecurityContext(run_as_non_root=True, run_as_user=CHAT_UID, run_as_group=CHAT_UID,
                                             allow_privilege_escalation=False, read_only_root_filesystem=True,
                                             capabilities=k8s.Capabilities(drop=["ALL"])),
        # the one writable place (Python's tempfile, should a library spool to disk)
        volume_mounts=[k8s.VolumeMount(name="tmp", mount_path="/tmp")],
    )


class ChatChart(cdk8s.Chart):
    def __init__(self, scope: Construct, chart_id: str, *, props: ChatProps) -> None:
        super().__init__(scope, chart_id)
        meta = {"namespace": props.namespace, "labels": {**SELECTOR, **PART_OF}}
        self._deployment(props, meta)
        k8s.KubeService(self, "service", metadata=k8s.ObjectMeta(name=names.CHAT_APP_LABEL, **meta), spec=k8s.ServiceSpec(
            type="ClusterIP", selector=SELECTOR,
            ports=[k8s.ServicePort(name=PORT_NAME, port=names.CHAT_SERVICE_PORT,
                                   target_port=k8s.IntOrString.from_string(PORT_NAME), protocol="TCP")]))
        self._network_policy(meta)

    def _deployment(self, props: ChatProps, meta: dict) -> None:
        k8s.KubeDeployment(self, "deployment", metadata=k8s.ObjectMeta(name=names.CHAT_APP_LABEL, **meta), spec=k8s.DeploymentSpec(
            replicas=props.replicas,
            selector=k8s.LabelSelector(match_labels=SELECTOR),
            template=k8s.PodTemplateSpec(
                metadata=k8s.ObjectMeta(labels={**SELECTOR, "app.kubernetes.io/name": names.CHAT_APP_LABEL}),
                spec=k8s.PodSpec(
                    automount_service_account_token=False,  # it calls no Kubernetes API
                    enable_service_links=False,
                    security_context=k8s.PodSecurityContext(run_as_non_root=True, run_as_user=CHAT_UID,
                                                            run_as_group=CHAT_UID,
                                                            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault")),
                    containers=[_container(props)],
                    volumes=[k8s.Volume(name="tmp", empty_dir=k8s.EmptyDirVolumeSource(
                        medium="Memory", size_limit=k8s.Quantity.from_string(TMP_SIZE)))],
                    # Stays off the GPU nodes: they carry the nvidia.com/gpu taint and this pod tolerates none.
                ),
            ),
        ))

    def _network_policy(self, meta: dict) -> None:
        vllm = k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels={"app": names.VLLM_APP_LABEL}))
        dns = k8s.NetworkPolicyPeer(namespace_selector=k8s.LabelSelector(
            match_labels={"kubernetes.io/metadata.name": "kube-system"}))
        k8s.KubeNetworkPolicy(self, "network-policy", metadata=k8s.ObjectMeta(name=names.CHAT_APP_LABEL, **meta),
                              spec=k8s.NetworkPolicySpec(
                                  pod_selector=k8s.LabelSelector(match_labels=SELECTOR),
                                  policy_types=["Ingress", "Egress"],
                                  ingress=[k8s.NetworkPolicyIngressRule(
                                      from_=[k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector())],
                                      ports=[k8s.NetworkPolicyPort(port=k8s.IntOrString.from_string(PORT_NAME),
                                                                   protocol="TCP")])],
                                  egress=[
                                      k8s.NetworkPolicyEgressRule(to=[vllm], ports=[k8s.NetworkPolicyPort(
                                          port=k8s.IntOrString.from_number(names.VLLM_PORT), protocol="TCP")]),
                                      k8s.NetworkPolicyEgressRule(to=[dns], ports=[
                                          k8s.NetworkPolicyPort(port=k8s.IntOrString.from_number(DNS_PORT), protocol=proto)
                                          for proto in ("UDP", "TCP")]),
                                  ]))
