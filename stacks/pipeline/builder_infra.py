"""What the builder instance runs with: a security group with no ingress and an instance role."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.nag import acknowledge_findings


class BuilderInfra(Construct):
    """Security group (egress only: ECR, S3 layers, SSM through NAT or endpoints) and instance profile."""

    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc) -> None:
        super().__init__(scope, construct_id)
        self.subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=True,
            description="vllm-coldstart snapshot builder: no ingress; egress to ECR, S3 and SSM",
        )
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="vllm-coldstart snapshot builder: SSM agent and ECR image pulls",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEC2ContainerRegistryReadOnly"),
            ],
        )
        self.instance_profile = iam.InstanceProfile(self, "InstanceProfile", role=self.role)
        acknowledge_findings(
            self.role, "AwsSolutions-IAM4",
            [
                "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore",
                "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            ],
            "The builder is a short-lived Bottlerocket instance that only needs the SSM agent and read-only ECR pulls; "
            "these AWS managed policies are exactly that scope and track new SSM/ECR API actions.",
        )
