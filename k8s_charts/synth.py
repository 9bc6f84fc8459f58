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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8s_charts.inputs import ChartInputError, check_snapshot_id
from k8s_charts.published import PublishedSnapshot, read_published
from k8s_charts.stack_outputs import read_stack_outputs
from settings import names
from settings.config import PREFIX, AppConfig, ConfigError, default_context, load_config

ENV_SNAPSHOT_ID = "COLDSTART_SNAPSHOT_ID"
DEFAULT_OUTDIR = "dist"


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


def load_cfg(overrides: list[str]) -> AppConfig:
    context = default_context()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--context {item!r}: expected KEY=VALUE")
        context[key if key.startswith(PREFIX) else PREFIX + key] = value
    return load_config(context)


@dataclass
class AwsFacts:
    """What the synth learned from AWS; every field may be missing."""

    published: PublishedSnapshot | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    region: str | None = None
    warnings: list[str] = field(default_factory=list)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def gather_from_aws(cfg: AppConfig, args: argparse.Namespace, session: Any) -> AwsFacts:
    """Read Parameter Store, the stack outputs and the caller's account; never raises for AWS trouble."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    facts = AwsFacts()
    # botocore reads AWS_DEFAULT_REGION; many tools set AWS_REGION instead.
    region = args.region or cfg.region or session.region_name or os.environ.get("AWS_REGION")
    client_config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
    aws_errors = (BotoCoreError, ClientError)
    facts.region = region
    try:
        ssm = session.client("ssm", region_name=region, config=client_config)
        facts.published = read_published(ssm, cfg.snapshotParameterName, snapshot_id=args.snapshot_id)
    except aws_errors as err:
        facts.warnings.append(f"WARNING: cannot read {cfg.snapshotParameterName} from Parameter Store ({_one_line(err)}); "
                              "synthesizing as if no snapshot were published")
        if args.snapshot_id:
            facts.published = PublishedSnapshot(snapshot_id=args.snapshot_id, source="--snapshot-id", notes=(
                "Parameter Store unreachable: using --snapshot-id without metadata (Bottlerocket version and digest unknown)",))
        return facts  # the same trouble would repeat for every other call
    try:
        facts.outputs = read_stack_outputs(session.client("cloudformation", region_name=region, config=client_config))
    except aws_errors as err:
        facts.warnings.append(f"warning: cannot read the stack outputs ({_one_line(err)}); using flags and defaults")
    if not (args.account or cfg.account):
        try:
            facts.account = session.client("sts", region_name=region, config=client_config).get_caller_identity()["Account"]
        except aws_errors as err:
            facts.warnings.append(f"warning: cannot determine the AWS account ({_one_line(err)})")
    return facts


def offline_facts(args: argparse.Namespace) -> AwsFacts:
    facts = AwsFacts()
    if args.snapshot_id:
        facts.published = PublishedSnapshot(snapshot_id=args.snapshot_id, source="--snapshot-id", notes=(
            "--offline: using --snapshot-id without metadata (Bottlerocket version and digest unknown)",))
    return facts


def banner(lines: list[str]) -> str:
    bar = "!" * 100
    return "\n".join([bar, *(f"!! {line}" for line in lines), bar])


def main(argv: Sequence[str] | None = None, *, session: Any = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_cfg(args.context)
        if args.snapshot_id is not None:
            args.snapshot_id = check_snapshot_id(args.snapshot_id, f"--snapshot-id (or {ENV_SNAPSHOT_ID})")
    except (ConfigError, ChartInputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.offline:
        facts = offline_facts(args)
    else:
        try:
            if session is None:
                import boto3

                session = boto3.Session()
            facts = gather_from_aws(cfg, args, session)
        except ChartInputError as err:  # e.g. a malformed ID stored in the parameter: never guess one
            print(f"error: {err}", file=sys.stderr)
            return 2

    notices = list(facts.warnings)
    node_role = args.node_role_name or facts.outputs.get(names.OUTPUT_KARPENTER_NODE_ROLE)
    if node_role is None:
        from k8s_charts.charts import default_node_role_name

        node_role = default_node_role_name(cfg.clusterName)
        notices.append(f"note: Karpenter node role assumed to be {node_role} (pass --node-role-name or deploy "
                       f"{names.CLUSTER_STACK} so its {names.OUTPUT_KARPENTER_NODE_ROLE} output can be read)")
    bucket = args.model_bucket or (None if cfg.modelBucketName else facts.outputs.get(names.OUTPUT_BUCKET_NAME))
    identity = args.identity or ("irsa" if args.vllm_role_arn else "pod-identity")
    role_arn = args.vllm_role_arn or (facts.outputs.get(names.OUTPUT_VLLM_ROLE_ARN) if identity == "irsa" else None)

    problem = writable_directory_problem(Path(args.outdir))
    if problem:
        print(f"error: --outdir: invalid value {args.outdir!r}; {problem}; pass a writable folder such as {DEFAULT_OUTDIR}",
              file=sys.stderr)
        return 2

    # Imported here: starting the jsii runtime is the slow part, and bad arguments should fail first.
    import cdk8s

    from k8s_charts.charts import build_charts

    app = cdk8s.App(outdir=args.outdir)
    try:
        built = build_charts(app, cfg, facts.published, node_role_name=node_role, model_bucket=bucket, model_uri=args.model_uri,
                             account=args.account or facts.account, region=args.region or facts.region,
                             identity=identity, vllm_role_arn=role_arn)
    except ChartInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    notices.extend(built.notices)
    app.synth()

    loud = [n for n in notices if n.startswith("WARNING")]
    quiet = [n for n in notices if not n.startswith("WARNING")]
    if loud:
        print(banner(loud), file=sys.stderr)
    for line in quiet:
        print(line, file=sys.stderr)
    nodes = built.props.gpu_nodes
    snapshot = nodes.snapshot_id or "NONE (empty data volume)"
    print(f"snapshot: {snapshot}; AMI: {nodes.ami_alias}; image: {built.props.vllm.image}")
    for chart in built.charts:
        print(f"wrote {Path(args.outdir) / (chart.node.id + '.k8s.yaml')}")
    return 0


def writable_directory_problem(path: Path) -> str | None:
    """Why ``path`` cannot take the manifests (None: it can). Checked before jsii starts: node's own
    error for a file or a read-only /proc path is a traceback, or a hang on /proc."""
    if path.exists() and not path.is_dir():
        return "it exists and is not a directory"
    resolved = path.resolve()
    if resolved == Path("/proc") or Path("/proc") in resolved.parents or Path("/sys") in resolved.parents:
        return "it is inside a kernel pseudo file system"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        return f"it cannot be written ({err.strerror or err})"
    return None


if __name__ == "__main__":
    sys.exit(main())
