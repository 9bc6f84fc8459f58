"""``build_charts``: the one entry point both deployment paths use.

- Standalone (``python -m k8s_charts.synth`` / ``make update-manifests``): a ``cdk8s.App`` with
  ``outdir=dist`` -> ``app.synth()`` writes ``dist/gpu-nodes.k8s.yaml`` and ``dist/vllm.k8s.yaml``
  for ``kubectl apply`` or GitOps.
- CDK (``coldstart:manifestsDeployment = cdk``): the cluster stack creates its own ``cdk8s.App``,
  calls ``build_charts`` with the same arguments (CDK tokens are fine for the role name, bucket
  and role ARN) and hands each chart to ``cluster.add_cdk8s_chart(chart.node.id, chart)``.

Example (cluster stack)::

    charts = build_charts(cdk8s.App(), cfg, published, node_role_name=node_role.role_name,
                          model_bucket=bucket.bucket_name, account=self.account, region=self.region)
    for chart in charts.charts:
        cluster.add_cdk8s_chart(chart.node.id, chart)
    for notice in charts.notices:
        Annotations.of(self).add_warning(notice)
"""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from k8s_charts.chat import ChatChart, resolve_chat
from k8s_charts.nodeclass import GpuNodeClass
from k8s_charts.nodepool import GpuNodePool
from k8s_charts.props import GpuNodesProps, Identity, Probes, ResolvedProps, resolve
from k8s_charts.published import PublishedSnapshot
from k8s_charts.vllm import PART_OF, VllmChart
from settings.config import AppConfig

GPU_NODES_CHART = "gpu-nodes"  # -> dist/gpu-nodes.k8s.yaml (cluster-scoped Karpenter objects)
VLLM_CHART = "vllm"  # -> dist/vllm.k8s.yaml (the namespace and the workload)
CHAT_CHART = "chat"  # -> dist/chat.k8s.yaml (the demo chat app, in vLLM's namespace)


class GpuNodesChart(cdk8s.Chart):
    """Cluster-scoped: the EC2NodeClass (how a node is built) and the NodePool (when and which)."""

    def __init__(self, scope: Construct, id: str, *, props: GpuNodesProps) -> None:
        super().__init__(scope, id, labels=PART_OF, disable_resource_name_hashes=True)
        self.node_class = GpuNodeClass(self, "node-class", props=props)
        self.node_pool = GpuNodePool(self, "node-pool", props=props)


def default_node_role_name(cluster_name: str) -> str:
    """The Karpenter node role name assumed by an offline synth (the cluster stack outputs the real one)."""
    return f"KarpenterNodeRole-{cluster_name}"


@dataclass(frozen=True)
class ChartSet:
    charts: tuple[cdk8s.Chart, ...]
    props: ResolvedProps
    extra_notices: tuple[str, ...] = ()

    @property
    def notices(self) -> tuple[str, ...]:
        """Warnings for a human: print them (synth) or add them as CDK annotations (cluster stack)."""
        return self.props.notices + self.extra_notices


def build_charts(
    app: cdk8s.App,
    config: AppConfig,
    published: PublishedSnapshot | None,
    *,
    node_role_name: str,
    model_bucket: str | None = None,
    model_uri: str | None = None,
    account: str | None = None,
    region: str | None = None,
    identity: Identity = "pod-identity",
    vllm_role_arn: str | None = None,
    probes: Probes | None = None,
    chat_image_tag: str | None = None,
) -> ChartSet:
    """Validate the inputs and add the GPU-node and vLLM charts to ``app``.

    ``published`` is the snapshot to restore (None: nothing published yet -> nodes without
    snapshotID). ``account``/``region`` default to the config's. ``identity`` is how the vLLM
    service account gets its IAM role: "pod-identity" (an EKS Pod Identity association made by the
    cluster stack; no annotation) or "irsa" (annotation with ``vllm_role_arn``). The demo chat app
    (coldstart:chatEnabled) runs ``chat_image_tag``, else coldstart:chatImageTag, else this checkout's tag.

    Raises ChartInputError (naming the field) before any chart is created.
    """
    props = resolve(config, published, node_role_name=node_role_name, model_bucket=model_bucket, model_uri=model_uri,
                    account=account, region=region, identity=identity, vllm_role_arn=vllm_role_arn, probes=probes)
    chat, chat_notices = resolve_chat(config, account=account or config.account, region=region or config.region,
                                      image_tag=chat_image_tag)
    charts: tuple[cdk8s.Chart, ...] = (
        GpuNodesChart(app, GPU_NODES_CHART, props=props.gpu_nodes),
        VllmChart(app, VLLM_CHART, props=props.vllm),
    )
    if chat is not None:
        charts += (ChatChart(app, CHAT_CHART, props=chat),)
    return ChartSet(charts=charts, props=props, extra_notices=chat_notices)
