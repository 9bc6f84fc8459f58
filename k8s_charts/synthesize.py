"""``synthesize``: the typed config in, ``<outdir>/gpu-nodes.k8s.yaml`` and ``<outdir>/vllm.k8s.yaml`` out.

The one function every standalone synth calls with an ``AppConfig`` it already holds:
``python -m k8s_charts.synth`` (its flags, ``synth.main``), ``coldstart update-manifests`` and the
rehearsal. With an AWS session it reads the published snapshot (``snapshot_source``), the stacks'
outputs and the caller's account; AWS trouble degrades to defaults with a notice, never an error.
Bad input (a malformed snapshot ID, an invalid value, an unwritable outdir) raises ChartInputError
naming the field, before anything is written. It prints nothing: callers show ``SynthResult``.

    result = synthesize(config, outdir=Path("dist"), aws=boto3.Session(), model_bucket="my-models")
    result = synthesize(config, outdir=Path("dist"), aws=OFFLINE, region="us-west-2", snapshot_id="snap-...")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from k8s_charts.inputs import ChartInputError, check_snapshot_id, fail
from k8s_charts.props import Identity
from k8s_charts.published import PublishedSnapshot
from k8s_charts.snapshot_source import (
    ENV_SNAPSHOT_ID,
    PINNED_SOURCE,
    client_config,
    one_line,
    pinned_without_metadata,
    read_snapshot_or_warn,
)
from k8s_charts.stack_outputs import read_stack_outputs
from settings import names
from settings.config import AppConfig

DEFAULT_OUTDIR = "dist"


class Offline:
    """The type of ``OFFLINE``: synthesize without any AWS call."""

    def __repr__(self) -> str:
        return "OFFLINE"


OFFLINE: Final = Offline()


@dataclass(frozen=True)
class SynthResult:
    """What was written and what a human should read about it."""

    files: tuple[Path, ...]
    notices: tuple[str, ...]  # "WARNING..." ones are loud (a banner), the rest are notes
    snapshot_id: str | None  # the EC2NodeClass's snapshotID; None: empty data volume
    ami_alias: str
    image: str

    @property
    def summary(self) -> str:
        return f"snapshot: {self.snapshot_id or 'NONE (empty data volume)'}; AMI: {self.ami_alias}; image: {self.image}"

    def messages(self) -> list[str]:
        """The notices as printed: the loud ones in one banner, then the rest, one a line."""
        loud = [n for n in self.notices if n.startswith("WARNING")]
        quiet = [n for n in self.notices if not n.startswith("WARNING")]
        return [*(banner(loud).splitlines() if loud else []), *quiet]


def banner(lines: list[str]) -> str:
    bar = "!" * 100
    return "\n".join([bar, *(f"!! {line}" for line in lines), bar])


@dataclass
class AwsFacts:
    """What the synth learned from AWS; every field may be missing."""

    published: PublishedSnapshot | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    region: str | None = None
    warnings: list[str] = field(default_factory=list)


def gather_from_aws(cfg: AppConfig, session: Any, *, region: str | None, snapshot_id: str | None,
                    need_account: bool) -> AwsFacts:
    """Read Parameter Store, the stack outputs and (``need_account``) the caller's account; never raises for AWS trouble."""
    from botocore.exceptions import BotoCoreError, ClientError

    # botocore reads AWS_DEFAULT_REGION; many tools set AWS_REGION instead.
    region = region or cfg.region or session.region_name or os.environ.get("AWS_REGION")
    facts = AwsFacts(region=region)
    reading = read_snapshot_or_warn(session, cfg.snapshotParameterName, region=region, snapshot_id=snapshot_id,
                                    consequence="synthesizing as if no snapshot were published")
    facts.published = reading.published
    if not reading.aws_reachable:
        assert reading.warning is not None
        facts.warnings.append(reading.warning)
        return facts  # the same trouble would repeat for every other call
    aws_errors = (BotoCoreError, ClientError)
    try:
        facts.outputs = read_stack_outputs(session.client("cloudformation", region_name=region, config=client_config()))
    except aws_errors as err:
        facts.warnings.append(f"warning: cannot read the stack outputs ({one_line(err)}); using flags and defaults")
    if need_account:
        try:
            facts.account = session.client("sts", region_name=region, config=client_config()).get_caller_identity()["Account"]
        except aws_errors as err:
            facts.warnings.append(f"warning: cannot determine the AWS account ({one_line(err)})")
    return facts


def offline_facts(snapshot_id: str | None) -> AwsFacts:
    return AwsFacts(published=pinned_without_metadata(snapshot_id, "--offline") if snapshot_id else None)


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


def synthesize(
    config: AppConfig,
    *,
    outdir: Path,
    aws: Any | Offline,
    snapshot_id: str | None = None,
    model_bucket: str | None = None,
    model_uri: str | None = None,
    node_role_name: str | None = None,
    account: str | None = None,
    region: str | None = None,
    identity: Identity | None = None,
    vllm_role_arn: str | None = None,
) -> SynthResult:
    """Write the manifests for ``config`` into ``outdir``.

    ``aws`` is a boto3 Session to read Parameter Store, the stack outputs and STS with, or OFFLINE.
    ``snapshot_id`` pins a snapshot instead of the published one. The other keywords override what
    the config and the stack outputs say; ``identity`` defaults to "irsa" when ``vllm_role_arn`` is
    given, else "pod-identity".

    Raises ChartInputError (naming the field) before anything is written.
    """
    # Before anything starts jsii (charts.py does on import): its Node runtime prints an end-of-life
    # banner on Node 20, which the README still supports locally, as raw Python bytes reprs on
    # stderr. app.py and the CLI silence it the same way.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if snapshot_id is not None:
        snapshot_id = check_snapshot_id(snapshot_id, f"{PINNED_SOURCE} (or {ENV_SNAPSHOT_ID})")
    if isinstance(aws, Offline):
        facts = offline_facts(snapshot_id)
    else:
        facts = gather_from_aws(config, aws, region=region, snapshot_id=snapshot_id, need_account=not (account or config.account))

    notices = list(facts.warnings)
    node_role = node_role_name or facts.outputs.get(names.OUTPUT_KARPENTER_NODE_ROLE)
    if node_role is None:
        from k8s_charts.charts import default_node_role_name

        node_role = default_node_role_name(config.clusterName)
        notices.append(f"note: Karpenter node role assumed to be {node_role} (pass --node-role-name or deploy "
                       f"{names.CLUSTER_STACK} so its {names.OUTPUT_KARPENTER_NODE_ROLE} output can be read)")
    bucket = model_bucket or (None if config.modelBucketName else facts.outputs.get(names.OUTPUT_BUCKET_NAME))
    identity = identity or ("irsa" if vllm_role_arn else "pod-identity")
    role_arn = vllm_role_arn or (facts.outputs.get(names.OUTPUT_VLLM_ROLE_ARN) if identity == "irsa" else None)

    problem = writable_directory_problem(outdir)
    if problem:
        raise fail("--outdir", str(outdir), f"{problem}; pass a writable folder such as {DEFAULT_OUTDIR}")

    # Imported here: starting the jsii runtime is the slow part, and bad arguments should fail first.
    import cdk8s

    from k8s_charts.charts import build_charts

    app = cdk8s.App(outdir=str(outdir))
    built = build_charts(app, config, facts.published, node_role_name=node_role, model_bucket=bucket, model_uri=model_uri,
                         account=account or facts.account, region=region or facts.region,
                         identity=identity, vllm_role_arn=role_arn)
    notices.extend(built.notices)
    app.synth()
    nodes = built.props.gpu_nodes
    return SynthResult(files=tuple(outdir / f"{chart.node.id}.k8s.yaml" for chart in built.charts), notices=tuple(notices),
                       snapshot_id=nodes.snapshot_id, ami_alias=nodes.ami_alias, image=built.props.vllm.image)


__all__ = ["OFFLINE", "ChartInputError", "Offline", "SynthResult", "synthesize"]
