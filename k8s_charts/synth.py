"""Standalone synthesis: ``python -m k8s_charts.synth`` writes ``dist/gpu-nodes.k8s.yaml`` and ``dist/vllm.k8s.yaml``.

Reads the published snapshot from Parameter Store (``coldstart:snapshotParameterName``) and the
stacks' outputs with the default AWS credentials. Nothing published yet, or no AWS access at all,
is not an error: the manifests are synthesized without a snapshotID (nodes get an empty data
volume and pull the image) and stderr says so. Bad input (a malformed snapshot ID, an invalid
config value) exits with status 2 and a message naming the field.

    python -m k8s_charts.synth                        # read AWS, write dist/
    python -m k8s_charts.synth --snapshot-id snap-... # roll back / pin a snapshot
    python -m k8s_charts.synth --offline --model-bucket my-bucket --account 123456789012 --region us-west-2
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from k8s_charts.inputs import ChartInputError
from k8s_charts.snapshot_source import ENV_SNAPSHOT_ID
from k8s_charts.synthesize import DEFAULT_OUTDIR, OFFLINE, SynthResult, synthesize
from settings import names
from settings.config import PREFIX, AppConfig, ConfigError, default_context, load_config


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m k8s_charts.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--outdir", default=DEFAULT_OUTDIR, help="directory for the *.k8s.yaml files (default: dist)")
    p.add_argument("--snapshot-id", default=os.environ.get(ENV_SNAPSHOT_ID) or None,
                   help=f"use this snapshot instead of the published one (env {ENV_SNAPSHOT_ID})")
    p.add_argument("--offline", action="store_true", help="do not call AWS (no Parameter Store, no stack outputs)")
    p.add_argument("--model-bucket", help=f"model bucket (default: coldstart:modelBucketName, else the {names.OUTPUT_BUCKET_NAME} output)")
    p.add_argument("--model-uri", help="full s3://bucket/prefix/ model URI (overrides bucket and coldstart:modelPrefix)")
    p.add_argument("--node-role-name", help=f"Karpenter node role NAME (default: the {names.OUTPUT_KARPENTER_NODE_ROLE} "
                                            "output, else KarpenterNodeRole-<clusterName>)")
    p.add_argument("--account", help="AWS account of the private ECR registry (default: coldstart:account, else STS)")
    p.add_argument("--region", help="AWS region (default: coldstart:region, else the AWS SDK's region)")
    p.add_argument("--identity", choices=("pod-identity", "irsa"),
                   help="how the vLLM service account gets its role (default: irsa if --vllm-role-arn is given, else pod-identity)")
    p.add_argument("--vllm-role-arn", help=f"model-read role ARN for IRSA (default with --identity irsa: the {names.OUTPUT_VLLM_ROLE_ARN} output)")
    p.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE",
                   help="config override like `cdk synth -c` (coldstart: prefix optional); repeatable")
    return p.parse_args(argv)


def load_cfg(overrides: list[str], base: AppConfig | None = None) -> AppConfig:
    """``base`` (default: cdk.json's defaults) with ``-c KEY=VALUE`` overrides applied. Raises ConfigError."""
    if base is not None and not overrides:
        return base
    context = default_context() if base is None else base.to_context()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--context {item!r}: expected KEY=VALUE")
        context[key if key.startswith(PREFIX) else PREFIX + key] = value
    return load_config(context)


def synthesize_from_args(config: AppConfig, args: argparse.Namespace, session: Any = None) -> SynthResult:
    """``synthesize`` with the flags of ``parse_args``; ``session`` (default: boto3's) unless --offline."""
    if args.offline:
        aws: Any = OFFLINE
    elif session is not None:
        aws = session
    else:
        import boto3

        aws = boto3.Session()
    return synthesize(config, outdir=Path(args.outdir), aws=aws, snapshot_id=args.snapshot_id,
                      model_bucket=args.model_bucket, model_uri=args.model_uri, node_role_name=args.node_role_name,
                      account=args.account, region=args.region, identity=args.identity, vllm_role_arn=args.vllm_role_arn)


def print_result(result: SynthResult) -> None:
    """Notices to stderr (the loud ones in a banner), the summary and the files written to stdout."""
    for line in result.messages():
        print(line, file=sys.stderr)
    print(result.summary)
    for path in result.files:
        print(f"wrote {path}")


def main(argv: Sequence[str] | None = None, *, session: Any = None) -> int:
    args = parse_args(argv)
    try:
        result = synthesize_from_args(load_cfg(args.context), args, session)
    except (ConfigError, ChartInputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return names.EXIT_BAD_INPUT  # an invalid flag, config value or snapshot ID
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
