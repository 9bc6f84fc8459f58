"""Synthesizing the pipeline stack in a small test app (the template the emulator runs)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def synthesize_pipeline_template(config: Any, outdir: str | Path | None = None, *, stack_name: str | None = None) -> dict[str, Any]:
    """Synthesize PipelineStack in a small app (a 2-AZ VPC stack stands in for the cluster's VPC): the rehearsal's
    template, seconds faster than the whole app. Returns the pipeline stack's template. (The tests run the whole
    app's pipeline template, synthesized once per session with cdk-nag on.)"""
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from settings import names
    from stacks.pipeline_stack import PipelineStack

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    out = Path(outdir or tempfile.mkdtemp(prefix="pipeline-cdk-out-"))
    app = cdk.App(outdir=str(out))
    network = cdk.Stack(app, "EmulatorNetwork")
    vpc = ec2.Vpc(network, "Vpc", max_azs=2, nat_gateways=1)
    name = stack_name or names.PIPELINE_STACK
    PipelineStack(app, name, config=config, vpc=vpc)
    app.synth()
    return json.loads((out / f"{name}.template.json").read_text())
