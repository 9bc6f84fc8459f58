"""Synthesizing the pipeline stack in a small test app (the template the emulator runs)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def synthesize_pipeline_template(config: Any, outdir: str | Path | None = None, *, stack_name: str | None = None,
                                 nag: bool = False) -> dict[str, Any]:
    """Synthesize PipelineStack in a small test app (a 2-AZ VPC stack stands in for the cluster's VPC).

    Returns the pipeline stack's template. With ``nag=True`` cdk-nag AwsSolutions runs over the app
    and an unacknowledged finding raises (the stand-in VPC's flow-log finding is acknowledged).
    """
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2

    from settings import names
    from stacks.nag import acknowledge, enable_aws_solutions_checks
    from stacks.pipeline_stack import PipelineStack

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    out = Path(outdir or tempfile.mkdtemp(prefix="pipeline-cdk-out-"))
    app = cdk.App(outdir=str(out))
    network = cdk.Stack(app, "EmulatorNetwork")
    vpc = ec2.Vpc(network, "Vpc", max_azs=2, nat_gateways=1)
    name = stack_name or names.PIPELINE_STACK
    PipelineStack(app, name, config=config, vpc=vpc)
    if nag:
        acknowledge(vpc, "AwsSolutions-VPC7", "Stand-in VPC of the emulator's test app; the real VPC (cluster stack) has its own flow logs.")
        enable_aws_solutions_checks(app)
    app.synth()
    return json.loads((out / f"{name}.template.json").read_text())
