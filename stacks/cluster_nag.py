"""Reasoned cdk-nag acknowledgements for the cluster stack, in one place for review.

Each entry names the finding as narrowly as cdk-nag allows (``Rule[Finding]``) and why it stands.
"""

from __future__ import annotations

import json

from aws_cdk import Stack
from constructs import IConstruct

from stacks.constructs.eks_cluster import EksCluster
from stacks.constructs.karpenter import Karpenter
from stacks.constructs.model_reader import ModelReaderRole
from stacks.nag import acknowledge, acknowledge_findings, nag_resource

_MANAGED_ARN = "arn:<AWS::Partition>:iam::aws:policy/{}"
_MANAGED = "AwsSolutions-IAM4[Policy::" + _MANAGED_ARN + "]"
KUBECTL_PROVIDER_REASON = (
    "CDK's own kubectl provider (aws_eks_v2) that applies the Karpenter Helm release; its roles, runtime and "
    "invoke-its-own-versions permission are managed by aws-cdk-lib, pinned in requirements.txt and upgraded with it."
)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
NODE_POLICY_REASON = (
    "EKS worker nodes require these AWS-maintained node policies (kubelet registration, VPC CNI, image pulls); "
    "AWS updates them as EKS evolves, which a hand-copied policy would not track."
)

# Karpenter discovers and creates EC2 resources whose IDs do not exist at deploy time. Every
# mutating statement on them is conditioned on this cluster's ownership tags (see
# stacks/constructs/karpenter.py), which is the scoping Karpenter's own reference policy uses.
KARPENTER_WILDCARDS = [
    "arn:<AWS::Partition>:ec2:<AWS::Region>::image/*",
    "arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*",
    *(f"arn:<AWS::Partition>:ec2:<AWS::Region>:*:{t}/*" for t in (
        "capacity-reservation", "fleet", "instance", "launch-template", "network-interface", "placement-group",
        "security-group", "spot-instances-request", "subnet", "volume")),
    "arn:<AWS::Partition>:iam::<AWS::AccountId>:instance-profile/*",
    "arn:<AWS::Partition>:ssm:<AWS::Region>::parameter/aws/service/*",
    "*",
]
KARPENTER_REASON = (
    "Karpenter launches and discovers instances, fleets, launch templates, volumes and instance profiles with IDs "
    "unknown at deploy time; mutations are conditioned on kubernetes.io/cluster/<name>=owned and karpenter.sh/nodepool "
    "tags, Describe*/pricing/ListInstanceProfiles calls support no resource scoping, the zonal-shift read is conditioned "
    "on this cluster's ARN, and SSM reads are limited to public /aws/service/ parameters. The account wildcard in EC2 "
    "ARNs is the reference's: shared subnets, security groups and capacity reservations can belong to another account."
)


def _ecr_public_policy(stack: Stack, handler: IConstruct) -> str:
    """The kubectl handler attaches ECR Public read-only behind a CloudFormation condition; nag
    prints that finding as the raw Fn::If."""
    condition = stack.get_logical_id(handler.node.find_child("HasEcrPublic"))
    arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]}
    return json.dumps({"Fn::If": [condition, arn, {"Ref": "AWS::NoValue"}]}, separators=(",", ":"))


def acknowledge_cluster_findings(stack: Stack, eks_cluster: EksCluster, karpenter: Karpenter,
                                 model_reader: ModelReaderRole) -> None:
    for policy in NODE_POLICIES:
        acknowledge(eks_cluster.node_role, _MANAGED.format(policy), NODE_POLICY_REASON)
        acknowledge(karpenter.node_role, _MANAGED.format(policy), NODE_POLICY_REASON)
    acknowledge(karpenter.node_role, _MANAGED.format("AmazonSSMManagedInstanceCore"),
                "Session Manager access to GPU nodes replaces SSH (no key pairs, no open ports) and lets operators debug image cache misses.")
    acknowledge(eks_cluster.cluster.role, _MANAGED.format("AmazonEKSClusterPolicy"),
                "The EKS service role must carry AmazonEKSClusterPolicy; EKS rejects clusters whose role lacks it.")

    provider = eks_cluster.cluster.node.find_child("KubectlProvider")
    handler = provider.node.find_child("Handler")
    acknowledge_findings(provider, "AwsSolutions-IAM4", [
        "Policy::" + _MANAGED_ARN.format(p) for p in (
            "service-role/AWSLambdaBasicExecutionRole", "service-role/AWSLambdaVPCAccessExecutionRole",
            "AmazonEC2ContainerRegistryReadOnly")
    ] + ["Policy::" + _ecr_public_policy(stack, handler)],
        KUBECTL_PROVIDER_REASON)
    acknowledge(provider, "AwsSolutions-L1", KUBECTL_PROVIDER_REASON)
    acknowledge(provider, f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(handler.node.default_child)}.Arn>:*]",
                KUBECTL_PROVIDER_REASON)

    for resource in KARPENTER_WILDCARDS:
        acknowledge(karpenter.controller_policies_scope, f"AwsSolutions-IAM5[Resource::{resource}]", KARPENTER_REASON)
    acknowledge(karpenter.queue, "AwsSolutions-SQS3",
                "Karpenter's interruption queue carries short-lived EC2/Health notices (5-minute retention); a stale notice "
                "retried from a DLQ would act on an instance that is already gone.")
    acknowledge(model_reader.role, f"AwsSolutions-IAM5[Resource::{nag_resource(stack, model_reader.objects_arn)}]",
                "Read access must cover every object under the model prefix (shards are named by the model); it is "
                "GetObject on <bucket>/<prefix>/* and ListBucket conditioned on that prefix only.")
    cache_reason = ("The shared compile cache is a tree of content-addressed blobs and per-directory manifests named by "
                    "vLLM's hashes, so access covers <bucket>/compile-cache/*; writes (PutObject, AbortMultipartUpload) are "
                    "limited to that prefix and only granted with compileCachePublish=pods or to the warm-cache writer role.")
    if model_reader.cache_objects_arn is not None:
        for role in (model_reader.role, model_reader.writer_role):
            if role is not None:
                acknowledge(role, f"AwsSolutions-IAM5[Resource::{nag_resource(stack, model_reader.cache_objects_arn)}]",
                            cache_reason)
    if model_reader.writer_role is not None:
        acknowledge(model_reader.writer_role, f"AwsSolutions-IAM5[Resource::{nag_resource(stack, model_reader.objects_arn)}]",
                    "The warm-cache Job runs vLLM, which must read every object under the model prefix.")
