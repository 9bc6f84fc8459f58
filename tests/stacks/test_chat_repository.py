"""The demo chat image's ECR repository (storage stack): immutable, scanned, retained, pruned, and
named by the config; no repository when the chat app is disabled."""

from __future__ import annotations

from dataclasses import replace

from aws_cdk.assertions import Match, Template

from app import new_app
from settings import names
from settings.config import load_default_config
from stacks.constructs.app_images import KEEP_IMAGES
from stacks.storage_stack import StorageStack

CFG = load_default_config()


def test_repository_is_immutable_scanned_retained_and_pruned(synthesized_app) -> None:  # noqa: ANN001
    template = Template.from_json(synthesized_app.template(names.STORAGE_STACK))
    template.resource_count_is("AWS::ECR::Repository", 1)
    template.has_resource("AWS::ECR::Repository", {
        "Properties": {
            "RepositoryName": CFG.chatRepository,
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            # absent = ECR's default, AES-256 at rest (CDK omits AES_256 since it is the default)
            "EncryptionConfiguration": Match.absent(),
            "LifecyclePolicy": {"LifecyclePolicyText": Match.serialized_json(Match.object_like({
                "rules": [Match.object_like({"selection": Match.object_like({"countType": "imageCountMoreThan",
                                                                             "countNumber": KEEP_IMAGES})})]}))},
        },
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    })
    template.has_output(names.OUTPUT_CHAT_REPOSITORY_URI, {"Value": Match.any_value()})


def test_no_repository_when_the_chat_app_is_disabled() -> None:
    app = new_app()  # cdk.json's feature flags, as the real app
    stack = StorageStack(app, "Storage", config=replace(CFG, chatEnabled=False))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::ECR::Repository", 0)
    assert names.OUTPUT_CHAT_REPOSITORY_URI not in template.to_json().get("Outputs", {})
