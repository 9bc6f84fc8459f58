"""The VPC: public subnets for NAT only, private subnets for every node and the snapshot builder."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from settings import names

# Interface endpoints that let private instances reach the APIs they need without NAT:
# ECR (image pulls), SSM (the builder's agent), STS (IRSA), EKS Auth (Pod Identity: the agent calls
# eks-auth:AssumeRoleForPodIdentity), EC2 and SQS (Karpenter), CloudWatch Logs. Each costs ~$7/month per AZ, so they are opt-in (config vpcInterfaceEndpoints).
INTERFACE_ENDPOINTS = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    "Ec2Messages": ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "EksAuth": ec2.InterfaceVpcEndpointAwsService.EKS_AUTH,
    "Ec2": ec2.InterfaceVpcEndpointAwsService.EC2,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
}


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cidr: str, max_azs: int, nat_gateways: int,
                 interface_endpoints: bool, cluster_name: str) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24,
                                        map_public_ip_on_launch=False),
                # /19 per AZ: GPU pods get VPC IPs, and Karpenter can burst many nodes.
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19),
            ],
        )
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                              traffic_type=ec2.FlowLogTrafficType.REJECT)
        # Weights stream from S3 at hundreds of MiB/s: keep that off the NAT gateway's per-GB bill.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3,
                                      subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)])
        if interface_endpoints:
            for name, service in INTERFACE_ENDPOINTS.items():
                self.vpc.add_interface_endpoint(name, service=service, private_dns_enabled=True,
                                                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS))
        for subnet in self.vpc.private_subnets:
            Tags.of(subnet).add(names.DISCOVERY_TAG, cluster_name)
            Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")
        for subnet in self.vpc.public_subnets:
            Tags.of(subnet).add("kubernetes.io/role/elb", "1")
