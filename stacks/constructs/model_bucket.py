"""The S3 bucket that holds model weights, streamed by vLLM's Run:ai loader."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


class ModelBucket(Construct):
    """Encrypted, TLS-only, private bucket with access logs; retained when the stack is deleted.

    Weights are large and slow to re-download, so deletion of the stack never deletes them
    (``RemovalPolicy.RETAIN``); delete the bucket by hand when you mean it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, bucket_name: str | None) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot write to SSE-KMS buckets
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365),
                                              abort_incomplete_multipart_upload_after=Duration.days(1))],
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            # SSE-S3: the streamer reads with plain GetObject; SSE-KMS would add a kms:Decrypt per
            # request and a KMS request bill on every cold start for little extra protection.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,  # an overwritten shard can be recovered; old versions expire below
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="model-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-multipart",
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
        )
