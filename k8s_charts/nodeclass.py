"""The Karpenter EC2NodeClass: how a GPU node is built, with its data volume restored from the snapshot."""

from __future__ import annotations

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


def _os_volume() -> k.Ec2NodeClassSpecBlockDeviceMappingsEbs:
    return k.Ec2NodeClassSpecBlockDeviceMappingsEbs(
        volume_size=OS_VOLUME_SIZE, volume_type=k.Ec2NodeClassSpecBlockDeviceMappingsEbsVolumeType.GP3,
        encrypted=True, delete_on_termination=True)


def _data_volume(props: GpuNodesProps) -> k.Ec2NodeClassSpecBlockDeviceMappingsEbs:
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


def _imdsv2_only(props: GpuNodesProps) -> k.Ec2NodeClassSpecMetadataOptions:
    return k.Ec2NodeClassSpecMetadataOptions(
        http_endpoint=k.Ec2NodeClassSpecMetadataOptionsHttpEndpoint.ENABLED,
        http_protocol_i_pv6=k.Ec2NodeClassSpecMetadataOptionsHttpProtocolIPv6.DISABLED,
        http_put_response_hop_limit=props.imds_hop_limit,
        http_tokens=k.Ec2NodeClassSpecMetadataOptionsHttpTokens.REQUIRED,
    )


class GpuNodeClass(Construct):
    """The EC2NodeClass ``names.GPU_NODECLASS``: AMI, subnets, security groups, volumes, IMDS, kubelet."""

    def __init__(self, scope: Construct, id: str, *, props: GpuNodesProps) -> None:
        super().__init__(scope, id)
        discovery = {names.DISCOVERY_TAG: props.cluster_name}
        self.resource = k.Ec2NodeClass(self, "resource", metadata={"name": names.GPU_NODECLASS}, spec=k.Ec2NodeClassSpec(
            role=props.node_role_name,
            # An alias must be the only AMI term (CRD rule); it pins the OS the snapshot was built on.
            ami_selector_terms=[k.Ec2NodeClassSpecAmiSelectorTerms(alias=props.ami_alias)],
            subnet_selector_terms=[k.Ec2NodeClassSpecSubnetSelectorTerms(tags=discovery)],
            security_group_selector_terms=[k.Ec2NodeClassSpecSecurityGroupSelectorTerms(tags=discovery)],
            block_device_mappings=[
                k.Ec2NodeClassSpecBlockDeviceMappings(device_name=OS_VOLUME_DEVICE, ebs=_os_volume()),
                k.Ec2NodeClassSpecBlockDeviceMappings(device_name=DATA_VOLUME_DEVICE, ebs=_data_volume(props)),
            ],
            metadata_options=_imdsv2_only(props),
            kubelet=k.Ec2NodeClassSpecKubelet(
                image_gc_high_threshold_percent=IMAGE_GC_HIGH_PERCENT,
                image_gc_low_threshold_percent=IMAGE_GC_LOW_PERCENT,
            ),
        ))
