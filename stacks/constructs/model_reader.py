"""The vLLM pods' identity: read the model prefix and the compile cache; write only the compile cache.

Compile cache (docs/compile-cache.md): ``s3://<models>/compile-cache/<image key>/`` holds code that
vLLM loads and runs. With ``compileCachePublish = pods`` the vLLM role may also write there (and
nowhere else); with ``readonly`` it cannot, and a separate writer role, bound to the service account
of ``coldstart warm-cache``'s Jobs, publishes instead.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from settings import names
from stacks.constructs.pod_identity import PodIdentityRole

# Multipart uploads (boto3 upload_file above 8 MiB) are PutObject calls; an aborted one needs AbortMultipartUpload.
CACHE_WRITE_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload"]


def grant_model_and_cache(role: iam.IRole, bucket: s3.IBucket, prefix: str, *, cache: bool, write_cache: bool) -> dict[str, str]:
    """Add the S3 statements; returns the object ARNs granted (for cdk-nag acknowledgements)."""
    arns = {"model": bucket.arn_for_objects(f"{prefix}/*")}
    # The Run:ai streamer lists the prefix (non-recursive) and issues ranged GetObject calls.
    role.add_to_principal_policy(iam.PolicyStatement(
        sid="ReadModelObjects", actions=["s3:GetObject"], resources=[arns["model"]]))
    listed = [f"{prefix}/", f"{prefix}/*"]
    if cache:
        arns["cache"] = bucket.arn_for_objects(f"{names.COMPILE_CACHE_PREFIX}/*")
        listed += [f"{names.COMPILE_CACHE_PREFIX}/", f"{names.COMPILE_CACHE_PREFIX}/*"]
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="ReadCompileCache", actions=["s3:GetObject"], resources=[arns["cache"]]))
        if write_cache:
            role.add_to_principal_policy(iam.PolicyStatement(
                sid="WriteCompileCacheOnly", actions=CACHE_WRITE_ACTIONS, resources=[arns["cache"]]))
    role.add_to_principal_policy(iam.PolicyStatement(
        sid="ListModelPrefix", actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": listed}}))
    return arns


class ModelReaderRole(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cluster_name: str, cluster_arn: str,
                 namespace: str, service_account: str, bucket: s3.IBucket, prefix: str,
                 compile_cache: bool = False, compile_cache_publish: str = "pods") -> None:
        super().__init__(scope, construct_id)
        pods_write = compile_cache and compile_cache_publish == "pods"
        description = f"vLLM pods: read s3://<models>/{prefix}/ only"
        if compile_cache:
            description = (f"vLLM pods: read s3://<models>/{prefix}/ and {names.COMPILE_CACHE_PREFIX}/, "
                           f"write {names.COMPILE_CACHE_PREFIX}/ {'only' if pods_write else 'never'}")
        identity = PodIdentityRole(
            self, "Identity", cluster_name=cluster_name, cluster_arn=cluster_arn, namespace=namespace,
            service_account=service_account, description=description)
        self.role = identity.role
        self.association = identity.association
        arns = grant_model_and_cache(self.role, bucket, prefix, cache=compile_cache, write_cache=pods_write)
        self.objects_arn = arns["model"]
        self.cache_objects_arn = arns.get("cache")
        # readonly: only `coldstart warm-cache`'s Jobs (their own service account) may publish.
        self.writer_role: iam.Role | None = None
        self.writer_association = None
        if compile_cache and not pods_write:
            writer = PodIdentityRole(
                self, "CacheWriter", cluster_name=cluster_name, cluster_arn=cluster_arn, namespace=namespace,
                service_account=names.COMPILE_CACHE_WRITER_SERVICE_ACCOUNT,
                description=f"vLLM compile-cache writer (coldstart warm-cache): read s3://<models>/{prefix}/, "
                            f"write {names.COMPILE_CACHE_PREFIX}/ only")
            self.writer_role = writer.role
            self.writer_association = writer.association
            grant_model_and_cache(writer.role, bucket, prefix, cache=True, write_cache=True)
