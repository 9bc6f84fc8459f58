"""The ECR repository for the demo chat app's image (apps/chat), pushed by ``make build-push-images``."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecr as ecr
from constructs import Construct

# Images kept: the newest ones by push time (each ~60 MB); older ones expire.
KEEP_IMAGES = 20


class ChatImageRepository(Construct):
    """Private, scanned on push, immutable tags (a git-<sha> tag always names the same image, so a
    deployed manifest cannot change under the pod), the newest ``KEEP_IMAGES`` kept.

    Retained when the stack is deleted, like the model bucket: a deployed Deployment may still pull from it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, repository_name: str) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self, "Repository",
            repository_name=repository_name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[ecr.LifecycleRule(max_image_count=KEEP_IMAGES, description=f"keep the newest {KEEP_IMAGES} images")],
        )
