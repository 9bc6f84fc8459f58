"""The pipeline's SSM Command document: the fixed pull/pin/verify script with data-only parameters.

The start_pull role may SendCommand with this document only (not AWS-RunShellScript), so it cannot
run arbitrary shell on the builder. The content comes from lambdas/snapshot_pipeline/steps/pull_script.py,
the single source of the pull script (control-container wait, admin-container bash, one `sheltie` call per host binary); the parameters' allowedPattern is the injection guard (see there).
"""

from __future__ import annotations

from aws_cdk import CfnTag
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lambdas.snapshot_pipeline.steps import pull_script
from settings import names


class PullDocument(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline_name: str) -> None:
        super().__init__(scope, construct_id)
        self.document_name = names.pull_document_name(pipeline_name)
        self.document = ssm.CfnDocument(
            self, "Document", name=self.document_name, document_type="Command", document_format="JSON",
            content=pull_script.document_content(),
            # A named document cannot be replaced in place: a changed script becomes a new default version.
            update_method="NewVersion",
            tags=[CfnTag(key=names.TAG_MANAGED_BY, value=names.MANAGED_BY_VALUE), CfnTag(key=names.TAG_PIPELINE, value=pipeline_name)],
        )
