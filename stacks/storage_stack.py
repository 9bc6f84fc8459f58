"""Storage that outlives the cluster: the model weights bucket and the demo chat app's image repository.
Its own stack so the cluster can be replaced without it."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from settings import names
from settings.config import AppConfig
from stacks.constructs.app_images import ChatImageRepository
from stacks.constructs.model_bucket import ModelBucket
from stacks.nag import acknowledge


class StorageStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        models = ModelBucket(self, "Models", bucket_name=config.modelBucketName)
        self.bucket = models.bucket
        acknowledge(
            models.access_logs,
            "AwsSolutions-S1",
            "This is the access-log target bucket; logging it into itself would loop and another log bucket adds nothing.",
        )
        CfnOutput(self, names.OUTPUT_BUCKET_NAME, value=self.bucket.bucket_name,
                  description="Bucket holding model weights (setup-model-s3 uploads here)")
        # An explicit, named export: the cluster stack imports it by this stable name (rather than
        # CDK's generated export), so its IAM policy and nag acknowledgement read the same way.
        CfnOutput(self, "ModelBucketArn", value=self.bucket.bucket_arn, export_name=names.EXPORT_MODEL_BUCKET_ARN)
        if config.chatEnabled:
            chat = ChatImageRepository(self, "ChatImages", repository_name=config.chatRepository)
            CfnOutput(self, names.OUTPUT_CHAT_REPOSITORY_URI, value=chat.repository.repository_uri,
                      description="ECR repository of the demo chat image (make build-push-images pushes here)")
