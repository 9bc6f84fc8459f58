"""Self-managed Karpenter v1: node role + access entry, controller role (Pod Identity) with the
tag-scoped policies of Karpenter's own CloudFormation reference (split as it splits them), the
interruption queue and its EventBridge rules, a node security group, and the Helm releases (CRDs
first, then the controller after its identity and its nodes)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IDependable

from settings import names
from settings.config import AppConfig
from stacks.constructs.pod_identity import PodIdentityRole

KARPENTER_CHART = "oci://public.ecr.aws/karpenter/karpenter"
KARPENTER_CRD_CHART = "oci://public.ecr.aws/karpenter/karpenter-crd"

# EventBridge events Karpenter reacts to (spot interruption, rebalance, scheduled health events,
# instance state changes), as in Karpenter's getting-started CloudFormation.
INTERRUPTION_EVENTS = {
    "ScheduledChange": events.EventPattern(source=["aws.health"], detail_type=["AWS Health Event"]),
    "SpotInterruption": events.EventPattern(source=["aws.ec2"], detail_type=["EC2 Spot Instance Interruption Warning"]),
    "Rebalance": events.EventPattern(source=["aws.ec2"], detail_type=["EC2 Instance Rebalance Recommendation"]),
    "InstanceStateChange": events.EventPattern(source=["aws.ec2"], detail_type=["EC2 Instance State-change Notification"]),
}


def _arn(service: str, resource: str, *, account: bool = True) -> str:
    return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID if account else ''}:{resource}"


def _any_account_arn(service: str, resource: str) -> str:
    """An ARN in this region of any account, as the reference writes it (shared subnets, security
    groups, capacity reservations and placement groups may belong to another account)."""
    return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:*:{resource}"


# The reference's managed policies (Karpenter v1.14 getting-started cloudformation.yaml), by name.
CONTROLLER_POLICIES = ("NodeLifecycle", "IAMIntegration", "EKSIntegration", "Interruption", "ResourceDiscovery", "ZonalShift")


def controller_policy_statements(cluster_name: str, cluster_arn: str, node_role_arn: str,
                                 queue_arn: str) -> dict[str, list[iam.PolicyStatement]]:
    """Karpenter v1 controller permissions, split into the reference's managed policies.

    Statement IDs, actions, resources and conditions follow Karpenter v1.14's getting-started
    ``cloudformation.yaml``; tests/real/test_karpenter_reference.py checks every statement against
    it and lists each deliberate difference with its reason. Mutations are scoped to resources
    tagged for this cluster. One policy would come close to IAM's 6,144-character limit.
    """
    owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}": "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name}
    res_owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"}
    region_tag = Aws.REGION
    ec2_created = [_any_account_arn("ec2", f"{t}/*")
                   for t in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")]
    instance_profiles = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:instance-profile/*"
    node_lifecycle = [
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[_arn("ec2", "image/*", account=False), _arn("ec2", "snapshot/*", account=False),
                       *(_any_account_arn("ec2", f"{t}/*")
                         for t in ("security-group", "subnet", "capacity-reservation", "placement-group"))],
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2LaunchTemplateAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[_any_account_arn("ec2", "launch-template/*")],
            conditions={"StringEquals": res_owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceActionsWithTags",
            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            resources=ec2_created,
            conditions={"StringEquals": owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceCreationTagging",
            actions=["ec2:CreateTags"],
            resources=ec2_created,
            conditions={
                "StringEquals": {**owned, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceTagging",
            actions=["ec2:CreateTags"],
            resources=[_any_account_arn("ec2", "instance/*")],
            conditions={
                "StringEquals": res_owned,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedDeletion",
            actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            resources=[_any_account_arn("ec2", "instance/*"), _any_account_arn("ec2", "launch-template/*")],
            conditions={"StringEquals": res_owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        ),
    ]
    iam_integration = [
        iam.PolicyStatement(
            sid="AllowPassingInstanceRole",
            actions=["iam:PassRole"],
            resources=[node_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileCreationActions",
            actions=["iam:CreateInstanceProfile"],
            resources=[instance_profiles],
            conditions={
                "StringEquals": {**owned, "aws:RequestTag/topology.kubernetes.io/region": region_tag},
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileTagActions",
            actions=["iam:TagInstanceProfile"],
            resources=[instance_profiles],
            conditions={
                "StringEquals": {**res_owned, "aws:ResourceTag/topology.kubernetes.io/region": region_tag,
                                 **owned, "aws:RequestTag/topology.kubernetes.io/region": region_tag},
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                               "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileActions",
            actions=["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            resources=[instance_profiles],
            conditions={
                "StringEquals": {**res_owned, "aws:ResourceTag/topology.kubernetes.io/region": region_tag},
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
    ]
    resource_discovery = [
        iam.PolicyStatement(
            sid="AllowRegionalReadActions",
            actions=["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                     "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                     "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                     "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
            resources=["*"],  # Describe* calls do not support resource-level permissions
            conditions={"StringEquals": {"aws:RequestedRegion": Aws.REGION}},
        ),
        iam.PolicyStatement(
            sid="AllowSSMReadActions",
            actions=["ssm:GetParameter"],
            resources=[f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}::parameter/aws/service/*"],
        ),
        iam.PolicyStatement(sid="AllowPricingReadActions", actions=["pricing:GetProducts"], resources=["*"]),
        # ListInstanceProfiles supports no resource-level permission.
        iam.PolicyStatement(sid="AllowUnscopedInstanceProfileListAction", actions=["iam:ListInstanceProfiles"], resources=["*"]),
        iam.PolicyStatement(sid="AllowInstanceProfileReadActions", actions=["iam:GetInstanceProfile"],
                            resources=[instance_profiles]),
    ]
    return {
        "NodeLifecycle": node_lifecycle,
        "IAMIntegration": iam_integration,
        "EKSIntegration": [
            iam.PolicyStatement(sid="AllowAPIServerEndpointDiscovery", actions=["eks:DescribeCluster"], resources=[cluster_arn]),
        ],
        "Interruption": [
            iam.PolicyStatement(
                sid="AllowInterruptionQueueActions",
                actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                resources=[queue_arn],
            ),
        ],
        "ResourceDiscovery": resource_discovery,
        "ZonalShift": [
            iam.PolicyStatement(
                sid="AllowZonalShiftStatusReadOnly",
                actions=["arc-zonal-shift:GetManagedResource"],
                resources=["*"],  # the condition names the one resource: this cluster
                conditions={"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}},
            ),
        ],
    }


class Karpenter(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, cluster: eks.Cluster,
                 depends_on: Sequence[IDependable] = ()) -> None:
        """``depends_on``: what the controller needs before its pods start (the Pod Identity agent
        add-on, the system node group)."""
        super().__init__(scope, construct_id)
        name = config.clusterName

        # --- nodes Karpenter launches ---
        self.node_role = iam.Role(
            self,
            "NodeRole",
            role_name=f"KarpenterNodeRole-{name}",  # the EC2NodeClass references it by name
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(n)
                for n in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                          "AmazonEC2ContainerRegistryPullOnly", "AmazonSSMManagedInstanceCore")
            ],
        )
        eks_l1.CfnAccessEntry(self, "NodeAccess", cluster_name=cluster.cluster_name,
                              principal_arn=self.node_role.role_arn, type="EC2_LINUX")
        self.node_security_group = ec2.SecurityGroup(
            self, "NodeSecurityGroup", vpc=cluster.vpc, allow_all_outbound=True,
            description=f"Karpenter GPU nodes of {name}")
        self.node_security_group.add_ingress_rule(self.node_security_group, ec2.Port.all_traffic(), "node to node")
        self.node_security_group.add_ingress_rule(ec2.Peer.security_group_id(cluster.cluster_security_group_id),
                                                  ec2.Port.all_traffic(), "control plane and system nodes to GPU nodes")
        ec2.CfnSecurityGroupIngress(self, "ClusterFromNodes", group_id=cluster.cluster_security_group_id,
                                    source_security_group_id=self.node_security_group.security_group_id,
                                    ip_protocol="-1", description="GPU nodes to control plane and system nodes")
        Tags.of(self.node_security_group).add(names.DISCOVERY_TAG, name)

        # --- interruption handling ---
        self.queue = sqs.Queue(self, "InterruptionQueue", retention_period=Duration.minutes(5),
                               encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True)
        for rule_id, pattern in INTERRUPTION_EVENTS.items():
            events.Rule(self, rule_id, event_pattern=pattern, targets=[targets.SqsQueue(self.queue)])

        # --- the controller ---
        controller = PodIdentityRole(
            self, "Controller", cluster_name=cluster.cluster_name, cluster_arn=cluster.cluster_arn,
            namespace=config.karpenterNamespace, service_account=names.KARPENTER_SERVICE_ACCOUNT,
            description=f"Karpenter controller of {name} (EKS Pod Identity)")
        self.controller_role = controller.role
        self.controller_association = controller.association
        # One managed policy per reference policy; the construct scopes their cdk-nag acknowledgements.
        self.controller_policies_scope = Construct(self, "ControllerPolicies")
        self.controller_policies: dict[str, iam.ManagedPolicy] = {}
        for policy_name, statements in controller_policy_statements(
                name, cluster.cluster_arn, self.node_role.role_arn, self.queue.queue_arn).items():
            policy = iam.ManagedPolicy(self.controller_policies_scope, policy_name, statements=statements,
                                       description=f"Karpenter controller of {name}: {policy_name} (reference policy)")
            self.controller_role.add_managed_policy(policy)
            self.controller_policies[policy_name] = policy

        # CRDs from their own chart, first: Helm installs a chart's crds/ folder once and never upgrades
        # it, so with CRDs in the main chart a version bump would silently keep the old schemas.
        self.crd_chart = cluster.add_helm_chart(
            "CrdChart",
            chart=KARPENTER_CRD_CHART,
            version=config.karpenterVersion,
            namespace=config.karpenterNamespace,
            release="karpenter-crd",
            create_namespace=False,
            wait=True,
            timeout=Duration.minutes(5),
        )
        self.chart = cluster.add_helm_chart(
            "Chart",
            chart=KARPENTER_CHART,
            version=config.karpenterVersion,
            namespace=config.karpenterNamespace,
            release="karpenter",
            create_namespace=False,
            skip_crds=True,  # owned by the karpenter-crd release above
            wait=True,
            timeout=Duration.minutes(10),
            values={
                "serviceAccount": {"name": names.KARPENTER_SERVICE_ACCOUNT},
                "settings": {"clusterName": name, "interruptionQueue": self.queue.queue_name},
                "controller": {"resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                             "limits": {"cpu": "1", "memory": "1Gi"}}},
                # Keep the controller on the system node group, never on the nodes it manages.
                "nodeSelector": {"vllm-coldstart/pool": "system"},
                "replicas": 2 if config.systemNodeCount > 1 else 1,
            },
        )
        # A controller pod admitted before its Pod Identity association (or before the agent that
        # serves it) runs without its role; without system nodes it cannot be scheduled at all.
        self.chart.node.add_dependency(self.crd_chart, controller.association, *self.controller_policies.values(),
                                       *depends_on)
