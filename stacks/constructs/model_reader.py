"""The vLLM pods' identity: read-only access to the model prefix, nothing else."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.pod_identity import PodIdentityRole


class ModelReaderRole(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cluster_name: str, cluster_arn: str,
                 namespace: str, service_account: str, bucket: s3.IBucket, prefix: str) -> None:
        super().__init__(scope, construct_id)
        identity = PodIdentityRole(
            self, "Identity", cluster_name=cluster_name, cluster_arn=cluster_arn, namespace=namespace,
            service_account=service_account, description=f"vLLM pods: read s3://<models>/{prefix}/ only")
        self.role = identity.role
        self.association = identity.association
        # The Run:ai streamer lists the prefix (non-recursive) and issues ranged GetObject calls.
        self.objects_arn = bucket.arn_for_objects(f"{prefix}/*")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            sid="ReadModelObjects", actions=["s3:GetObject"], resources=[self.objects_arn]))
        self.role.add_to_principal_policy(iam.PolicyStatement(
            sid="ListModelPrefix", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}/", f"{prefix}/*"]}}))
