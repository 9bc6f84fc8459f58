"""The EKS control plane (aws_eks_v2, NOT Auto Mode) with a small managed system node group."""

from __future__ import annotations

from aws_cdk import Annotations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.lambda_layer_kubectl_v36 import KubectlV36Layer
from constructs import Construct

from settings.config import AppConfig


class EksCluster(Construct):
    """Self-managed capacity only: EKS Auto Mode's node classes cannot mount a data-volume snapshot,
    which is the whole point of this project, so Karpenter is installed and run by us instead."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc) -> None:
        super().__init__(scope, construct_id)
        secrets_key = kms.Key(self, "SecretsKey", enable_key_rotation=True,
                              description=f"Envelope encryption of Kubernetes secrets in {config.clusterName}")
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=config.clusterName,
            version=eks.KubernetesVersion.of(config.kubernetesVersion),
            vpc=vpc,
            vpc_subnets=[private],
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,  # the system node group below is explicit
            endpoint_access=eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*config.clusterEndpointCidrs),
            secrets_encryption_key=secrets_key,
            cluster_logging=[
                eks.ClusterLoggingTypes.API,
                eks.ClusterLoggingTypes.AUDIT,
                eks.ClusterLoggingTypes.AUTHENTICATOR,
                eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
                eks.ClusterLoggingTypes.SCHEDULER,
            ],
            # The kubectl/Helm handler runs in the private subnets and uses the private endpoint, so
            # narrowing clusterEndpointCidrs to operator ranges never locks CloudFormation out.
            kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV36Layer(self, "KubectlLayer"),
                                                                private_subnets=vpc.private_subnets),
        )
        if "0.0.0.0/0" in config.clusterEndpointCidrs:
            Annotations.of(self).add_warning_v2(
                "vllm-coldstart:open-endpoint",
                "coldstart:clusterEndpointCidrs allows 0.0.0.0/0: the Kubernetes API endpoint is reachable from the whole "
                "internet (still authenticated by IAM). Narrow it to your CI and operator ranges before production.")
        node_role = iam.Role(
            self,
            "SystemNodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(n)
                for n in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
            ],
        )
        self.system_nodes = self.cluster.add_nodegroup_capacity(
            "System",
            ami_type=eks.NodegroupAmiType.BOTTLEROCKET_X86_64,
            instance_types=[ec2.InstanceType(config.systemNodeInstanceType)],
            min_size=config.systemNodeCount,
            desired_size=config.systemNodeCount,
            max_size=config.systemNodeCount + 1,
            subnets=private,
            node_role=node_role,
            labels={"vllm-coldstart/pool": "system"},
        )
        # Pod Identity is how Karpenter's controller and the vLLM pods get their IAM roles.
        self.pod_identity_agent = eks.Addon(self, "PodIdentityAgent", cluster=self.cluster, addon_name="eks-pod-identity-agent")
        # The VPC CNI as a managed add-on with its network policy agent on, so the vLLM NetworkPolicy
        # is enforced (the CNI EKS installs by itself leaves it off). OVERWRITE adopts that CNI.
        vpc_cni = eks.Addon(self, "VpcCni", cluster=self.cluster, addon_name="vpc-cni",
                            configuration_values={"enableNetworkPolicy": "true"})
        vpc_cni.node.default_child.add_property_override("ResolveConflicts", "OVERWRITE")
        self.node_role = node_role

        # --- operator access: aws_eks_v2 uses authentication mode API, so only CloudFormation's roles
        # can reach the cluster unless access entries name the operators' roles.
        admin_policy = eks.AccessPolicy.from_access_policy_name(
            "AmazonEKSClusterAdminPolicy", access_scope_type=eks.AccessScopeType.CLUSTER)
        for index, role_arn in enumerate(config.clusterAdminRoleArns):
            self.cluster.grant_access(f"OperatorAdmin{index}", role_arn, [admin_policy])
        if not config.clusterAdminRoleArns:
            Annotations.of(self).add_warning_v2(
                "vllm-coldstart:no-cluster-admins",
                "!!! coldstart:clusterAdminRoleArns is empty: NO operator can use this cluster. aws_eks_v2 clusters use "
                "authentication mode API and only CloudFormation's own roles get access, so kubectl, deploy-apps, "
                "report and teardown get Unauthorized. Set it to your operator role ARNs, e.g. "
                "-c 'coldstart:clusterAdminRoleArns=[\"arn:aws:iam::123456789012:role/Admin\"]', and deploy again.")
