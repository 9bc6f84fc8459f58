"""Karpenter EC2NodeClass + NodePool for GPU nodes whose data volume is restored from the snapshot."""

from __future__ import annotations

import cdk8s
from constructs import Construct

from k8s_charts import karpenter_api as k
from k8s_charts.props import (
    DATA_VOLUME_DEVICE,
    IMAGE_GC_HIGH_PERCENT,
    IMAGE_GC_LOW_PERCENT,
    OS_VOLUME_DEVICE,
    OS_VOLUME_SIZE,
    GpuNodesProps,
)
from settings import names

PART_OF = {"app.kubernetes.io/part-of": "vllm-coldstart"}
# An empty GPU node lingers this long so a restarted pod lands on a warm node (cached image and
# compile cache) instead of a new one; it costs up to this much idle GPU time per scale-down.
CONSOLIDATE_AFTER = "10m"
EXPIRE_AFTER = "720h"  # Karpenter's default, explicit: nodes (and their Bottlerocket) are recycled monthly


def _gp3(props: GpuNodesProps) -> k.Ec2NodeClassSpecBlockDeviceMappingsEbs:
    return k.Ec2NodeClassSpecBlockDeviceMappingsEbs(
        # snapshotID is left out when nothing is published: the node gets an empty data volume.
        snapshot_id=props.snapshot_id,
        volume_size=f"{props.data_volume_size_gib}Gi",
        volume_type=k.Ec2NodeClassSpecBlockDeviceMappingsEbsVolumeType.GP3,
        iops=props.data_volume_iops,
        throughput=props.data_volume_throughput,
        encrypted=True,
        delete_on_termination=True,
        volume_initialization_rate=props.volume_initialization_rate,
    )


class GpuNodesChart(cdk8s.Chart):
    """Cluster-scoped: the EC2NodeClass (how a node is built) and the NodePool (when and which)."""

    def __init__(self, scope: Construct, id: str, *, props: GpuNodesProps) -> None:
        super().__init__(scope, id, labels=PART_OF, disable_resource_name_hashes=True)
        discovery = {names.DISCOVERY_TAG: props.cluster_name}

        k.Ec2NodeClass(self, "node-class", metadata={"name": names.GPU_NODECLASS}, spec=k.Ec2NodeClassSpec(
            role=props.node_role_name,
            # An alias must be the only AMI term (CRD rule); it pins the OS the snapshot was built on.
            ami_selector_terms=[k.Ec2NodeClassSpecAmiSelectorTerms(alias=props.ami_alias)],
            subnet_selector_terms=[k.Ec2NodeClassSpecSubnetSelectorTerms(tags=discovery)],
            security_group_selector_terms=[k.Ec2NodeClassSpecSecurityGroupSelectorTerms(tags=discovery)],
            block_device_mappings=[
                k.Ec2NodeClassSpecBlockDeviceMappings(device_name=OS_VOLUME_DEVICE, ebs=k.Ec2NodeClassSpecBlockDeviceMappingsEbs(
                    volume_size=OS_VOLUME_SIZE, volume_type=k.Ec2NodeClassSpecBlockDeviceMappingsEbsVolumeType.GP3,
                    encrypted=True, delete_on_termination=True)),
                k.Ec2NodeClassSpecBlockDeviceMappings(device_name=DATA_VOLUME_DEVICE, ebs=_gp3(props)),
            ],
            metadata_options=k.Ec2NodeClassSpecMetadataOptions(
                http_endpoint=k.Ec2NodeClassSpecMetadataOptionsHttpEndpoint.ENABLED,
                http_protocol_i_pv6=k.Ec2NodeClassSpecMetadataOptionsHttpProtocolIPv6.DISABLED,
                http_put_response_hop_limit=props.imds_hop_limit,
                http_tokens=k.Ec2NodeClassSpecMetadataOptionsHttpTokens.REQUIRED,
            ),
            kubelet=k.Ec2NodeClassSpecKubelet(
                image_gc_high_threshold_percent=IMAGE_GC_HIGH_PERCENT,
                image_gc_low_threshold_percent=IMAGE_GC_LOW_PERCENT,
            ),
        ))

        def requirement(key: str, values: tuple[str, ...]) -> k.NodePoolSpecTemplateSpecRequirements:
            return k.NodePoolSpecTemplateSpecRequirements(
                key=key, operator=k.NodePoolSpecTemplateSpecRequirementsOperator.IN, values=list(values))

        k.NodePool(self, "node-pool", metadata={"name": names.GPU_NODEPOOL}, spec=k.NodePoolSpec(
            template=k.NodePoolSpecTemplate(spec=k.NodePoolSpecTemplateSpec(
                node_class_ref=k.NodePoolSpecTemplateSpecNodeClassRef(
                    group=k.EC2NODECLASS_GROUP, kind=k.EC2NODECLASS_KIND, name=names.GPU_NODECLASS),
                requirements=[
                    requirement("karpenter.k8s.aws/instance-family", props.instance_families),
                    requirement("karpenter.sh/capacity-type", props.capacity_types),
                    requirement("kubernetes.io/arch", props.architectures),
                    requirement("kubernetes.io/os", ("linux",)),
                ],
                # Only pods that tolerate the GPU taint (vLLM) land on these expensive nodes.
                taints=[k.NodePoolSpecTemplateSpecTaints(
                    key=names.GPU_TAINT_KEY, effect=k.NodePoolSpecTemplateSpecTaintsEffect.NO_SCHEDULE)],
                expire_after=EXPIRE_AFTER,
            )),
            limits={names.GPU_RESOURCE: k.NodePoolSpecLimits.from_number(props.gpu_limit)},
            disruption=k.NodePoolSpecDisruption(
                consolidation_policy=k.NodePoolSpecDisruptionConsolidationPolicy.WHEN_EMPTY,
                consolidate_after=CONSOLIDATE_AFTER,
                # A new snapshot ID drifts every node of the NodeClass: replace at most N at a time.
                budgets=[k.NodePoolSpecDisruptionBudgets(
                    nodes=str(props.drift_budget_nodes), reasons=[k.NodePoolSpecDisruptionBudgetsReasons.DRIFTED])],
            ),
        ))
