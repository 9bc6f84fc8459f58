"""The Karpenter NodePool: when GPU nodes are launched and replaced, and which instances they may be."""

from __future__ import annotations

from constructs import Construct

from k8s_charts import karpenter_api as k
from k8s_charts.props import GpuNodesProps
from settings import names

# An empty GPU node lingers this long so a restarted pod lands on a warm node (cached image and
# compile cache) instead of a new one; it costs up to this much idle GPU time per scale-down.
CONSOLIDATE_AFTER = "10m"
EXPIRE_AFTER = "720h"  # Karpenter's default, explicit: nodes (and their Bottlerocket) are recycled monthly


def _requirement(key: str, values: tuple[str, ...]) -> k.NodePoolSpecTemplateSpecRequirements:
    return k.NodePoolSpecTemplateSpecRequirements(
        key=key, operator=k.NodePoolSpecTemplateSpecRequirementsOperator.IN, values=list(values))


def _node_template(props: GpuNodesProps) -> k.NodePoolSpecTemplate:
    return k.NodePoolSpecTemplate(spec=k.NodePoolSpecTemplateSpec(
        node_class_ref=k.NodePoolSpecTemplateSpecNodeClassRef(
            group=k.EC2NODECLASS_GROUP, kind=k.EC2NODECLASS_KIND, name=names.GPU_NODECLASS),
        requirements=[
            _requirement("karpenter.k8s.aws/instance-family", props.instance_families),
            _requirement("karpenter.sh/capacity-type", props.capacity_types),
            _requirement("kubernetes.io/arch", props.architectures),
            _requirement("kubernetes.io/os", ("linux",)),
        ],
        # Only pods that tolerate the GPU taint (vLLM) land on these expensive nodes.
        taints=[k.NodePoolSpecTemplateSpecTaints(
            key=names.GPU_TAINT_KEY, effect=k.NodePoolSpecTemplateSpecTaintsEffect.NO_SCHEDULE)],
        expire_after=EXPIRE_AFTER,
    ))


def _disruption(props: GpuNodesProps) -> k.NodePoolSpecDisruption:
    return k.NodePoolSpecDisruption(
        consolidation_policy=k.NodePoolSpecDisruptionConsolidationPolicy.WHEN_EMPTY,
        consolidate_after=CONSOLIDATE_AFTER,
        # A new snapshot ID drifts every node of the NodeClass: replace at most N at a time.
        budgets=[k.NodePoolSpecDisruptionBudgets(
            nodes=str(props.drift_budget_nodes), reasons=[k.NodePoolSpecDisruptionBudgetsReasons.DRIFTED])],
    )


class GpuNodePool(Construct):
    """The NodePool ``names.GPU_NODEPOOL``: GPU families, capacity types, the GPU taint, limits, drift budget."""

    def __init__(self, scope: Construct, id: str, *, props: GpuNodesProps) -> None:
        super().__init__(scope, id)
        self.resource = k.NodePool(self, "resource", metadata={"name": names.GPU_NODEPOOL}, spec=k.NodePoolSpec(
            template=_node_template(props),
            limits={names.GPU_RESOURCE: k.NodePoolSpecLimits.from_number(props.gpu_limit)},
            disruption=_disruption(props),
        ))
