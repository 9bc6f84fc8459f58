"""The cluster: VPC, EKS, Karpenter and the vLLM pods' model-read identity."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from k8s_charts.published import PublishedSnapshot
from settings import names
from settings.config import AppConfig
from stacks.cluster_nag import acknowledge_cluster_findings
from stacks.constructs.eks_cluster import EksCluster
from stacks.constructs.karpenter import Karpenter
from stacks.constructs.model_reader import ModelReaderRole
from stacks.constructs.network import Network
from stacks.constructs.workload_manifests import WorkloadManifests


class ClusterStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig,
                 published: PublishedSnapshot | None = None, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        model_bucket = s3.Bucket.from_bucket_arn(self, "ModelBucket", Fn.import_value(names.EXPORT_MODEL_BUCKET_ARN))
        network = Network(self, "Network", cidr=config.vpcCidr, max_azs=config.maxAzs, nat_gateways=config.natGateways,
                          interface_endpoints=config.vpcInterfaceEndpoints, cluster_name=config.clusterName)
        self.vpc = network.vpc
        eks_cluster = EksCluster(self, "Eks", config=config, vpc=self.vpc)
        self.cluster = eks_cluster.cluster
        self.karpenter = Karpenter(self, "Karpenter", config=config, cluster=self.cluster,
                                   depends_on=[eks_cluster.pod_identity_agent, eks_cluster.system_nodes])
        self.model_reader = ModelReaderRole(
            self, "VllmModelReader", cluster_name=self.cluster.cluster_name, cluster_arn=self.cluster.cluster_arn,
            namespace=config.vllmNamespace, service_account=config.vllmServiceAccount,
            bucket=model_bucket, prefix=config.modelPrefix,
            compile_cache=config.compileCacheS3, compile_cache_publish=config.compileCachePublish)
        acknowledge_cluster_findings(self, eks_cluster, self.karpenter, self.model_reader)
        if config.manifestsDeployment == "cdk":
            self.workload = WorkloadManifests(
                self, "Workload", config=config, cluster=self.cluster, published=published,
                node_role_name=self.karpenter.node_role.role_name, model_bucket_name=model_bucket.bucket_name,
                after=[self.karpenter.chart, self.model_reader.association, eks_cluster.pod_identity_agent])

        CfnOutput(self, names.OUTPUT_CLUSTER_NAME, value=self.cluster.cluster_name)
        CfnOutput(self, names.OUTPUT_KARPENTER_NODE_ROLE, value=self.karpenter.node_role.role_name)
        CfnOutput(self, names.OUTPUT_VLLM_ROLE_ARN, value=self.model_reader.role.role_arn)
        # The operator's first step after deploying (README "Operator access").
        for index, role_arn in enumerate(config.clusterAdminRoleArns):
            CfnOutput(self, names.OUTPUT_KUBECONFIG_COMMAND + (str(index + 1) if index else ""),
                      description=f"kubeconfig for cluster admin role {index + 1} of coldstart:clusterAdminRoleArns",
                      value=kubeconfig_command(self.cluster.cluster_name, self.region, role_arn))
        if not config.clusterAdminRoleArns:
            CfnOutput(self, names.OUTPUT_KUBECONFIG_COMMAND,
                      value="none: coldstart:clusterAdminRoleArns is empty, no operator role has access to this cluster")


def kubeconfig_command(cluster_name: str, region: str, role_arn: str) -> str:
    return f"aws eks update-kubeconfig --name {cluster_name} --region {region} --role-arn {role_arn}"
