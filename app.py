#!/usr/bin/env python3
"""The CDK app: resolve the configuration once, compose the stacks, check the whole app with cdk-nag."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# Before jsii starts: silence its Node-20 end-of-life banner for `cdk synth` too (the value is the
# Node major version the project pins in the README).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from k8s_charts.published import PublishedSnapshot  # noqa: E402
from k8s_charts.snapshot_source import ENV_SNAPSHOT_ID, read_snapshot_or_warn  # noqa: E402
from settings import names, versions  # noqa: E402
from settings.config import CDK_JSON, AppConfig, ConfigError, from_app_context, kubernetes_support  # noqa: E402

if TYPE_CHECKING:
    import aws_cdk as cdk

# How the CDK CLI hands an app its context (aws-cdk-lib cx-api/lib/cxapi.ts CONTEXT_ENV and
# CONTEXT_OVERFLOW_LOCATION_ENV; core/lib/app.ts loadContext merges both over the App's own context).
CONTEXT_ENV = "CDK_CONTEXT_JSON"
CONTEXT_OVERFLOW_ENV = "CONTEXT_OVERFLOW_LOCATION_ENV"


def published_for_synth(config: AppConfig) -> PublishedSnapshot | None:
    """The snapshot the cluster stack deploys in ``manifestsDeployment = cdk`` mode.

    Read at synth time, exactly as ``make update-manifests`` does; COLDSTART_SNAPSHOT_ID pins one.
    Without AWS access the charts are synthesized without a snapshot, and synth says so.
    """
    import boto3

    reading = read_snapshot_or_warn(boto3.Session(), config.snapshotParameterName, region=config.region,
                                    snapshot_id=os.environ.get(ENV_SNAPSHOT_ID) or None,
                                    consequence="the cluster stack deploys the manifests without a snapshot")
    if reading.warning:
        print(reading.warning, file=sys.stderr)
    return reading.published


def build_app(app: cdk.App, config: AppConfig, *, published: PublishedSnapshot | None = None,
              today: date | None = None) -> dict[str, cdk.Stack]:
    """``today`` (UTC) dates the Kubernetes support check; tests pass one, synth uses the clock."""
    import aws_cdk as cdk

    from stacks.cluster_stack import ClusterStack
    from stacks.nag import enable_aws_solutions_checks
    from stacks.pipeline_stack import PipelineStack
    from stacks.storage_stack import StorageStack

    support = kubernetes_support(config, today or datetime.now(UTC).date())  # ConfigError past extended support
    env = cdk.Environment(account=config.account, region=config.region) if config.account or config.region else None
    storage = StorageStack(app, names.STORAGE_STACK, config=config, env=env,
                           description="vllm-coldstart: model weights bucket")
    cluster = ClusterStack(app, names.CLUSTER_STACK, config=config, published=published, env=env,
                           description="vllm-coldstart: VPC, EKS, Karpenter, vLLM model-read role")
    cluster.add_stack_dependency(storage, "imports the model bucket ARN export")
    pipeline = PipelineStack(app, names.PIPELINE_STACK, config=config, vpc=cluster.vpc, env=env,
                             description="vllm-coldstart: image-cache snapshot pipeline")
    stacks: dict[str, cdk.Stack] = {"storage": storage, "cluster": cluster, "pipeline": pipeline}
    if support.status in (versions.EXTENDED, versions.UNKNOWN):
        cdk.Annotations.of(cluster).add_warning_v2(f"vllm-coldstart:kubernetes-{support.status}", support.message)
    for stack in stacks.values():
        cdk.Tags.of(stack).add("project", "vllm-coldstart")
    enable_aws_solutions_checks(app)
    return stacks


def own_context(environ: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """The context an App is built with: cdk.json's (feature flags and defaults) when run without the
    CDK CLI (``python app.py``, the offline synth and the tests); the CLI passes cdk.json's in CDK_CONTEXT_JSON."""
    return None if CONTEXT_ENV in environ else json.loads(CDK_JSON.read_text())["context"]


def app_context(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The context ``new_app()`` will hold, read without starting jsii (core/lib/app.ts loadContext: the App's own
    context, then CDK_CONTEXT_JSON, then the overflow file), so a bad key fails in a fraction of a second."""
    context = own_context(environ) or {}
    context.update(json.loads(environ.get(CONTEXT_ENV) or "{}"))
    if environ.get(CONTEXT_OVERFLOW_ENV):
        context.update(json.loads(Path(environ[CONTEXT_OVERFLOW_ENV]).read_text()))
    return context


def new_app(**kwargs: object) -> cdk.App:
    """An App with cdk.json's context even when run without the CDK CLI, so both paths synthesize the same templates."""
    import aws_cdk as cdk

    return cdk.App(context=own_context(), **kwargs)


def _refuse(err: ConfigError) -> NoReturn:
    print(f"configuration error: {err}", file=sys.stderr)
    sys.exit(names.EXIT_BAD_INPUT)  # as the operator CLI's -c; `cdk synth` then reports the app's failure itself


def main() -> None:
    # The configuration first: a bad key is refused before jsii and the CDK libraries load (seconds).
    try:
        config = from_app_context(app_context())
    except ConfigError as err:
        _refuse(err)
    # The CDK CLI sets CDK_OUTDIR; a plain `python app.py` writes to ./cdk.out like `cdk synth`.
    app = new_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"))
    published = published_for_synth(config) if config.manifestsDeployment == "cdk" else None
    try:
        build_app(app, config, published=published)
    except ConfigError as err:
        _refuse(err)
    app.synth()


if __name__ == "__main__":
    main()
