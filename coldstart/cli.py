"""The operator CLI: ``python -m coldstart <command>`` (the Makefile targets call it).

Each command parses options, builds clients and prints; the logic lives in ``coldstart/ops``.
Expected failures (no credentials, wrong region, nothing published, a model that would not load,
a bad config value) are turned into one line and a non-zero exit in one place: ``_Group.invoke``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import boto3
import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Column, Table
from rich.text import Text
from typer._click.core import Context as ClickContext
from typer._click.exceptions import BadParameter, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from coldstart import interrupts
from coldstart.ops import doctor as doctor_ops
from coldstart.ops import follow as follow_ops
from coldstart.ops import images as image_ops
from coldstart.ops import model_layout, model_upload, port_forward
from coldstart.ops import smoke as smoke_ops
from coldstart.ops import snapshots as snapshot_ops
from coldstart.ops.aws import AwsSession, resolve_bucket, resolve_state_machine, stack_output
from coldstart.ops.errors import OperatorError, describe_expected_error
from coldstart.ops.kubectl import Kubectl
from lambdas.snapshot_pipeline.steps import fsr
from settings import names, parameter_store
from settings.config import REPO_ROOT, AppConfig, ConfigError, load_default_config

# markup off: messages carry AWS text and JSON with brackets; colour goes through Text styles.
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
DIST = REPO_ROOT / "dist"
EXIT_FAILURE = 1


class _Group(TyperGroup):
    """The one place failures become a single line on stderr: bad input (usage) exits 2, Ctrl-C 130
    (``coldstart.interrupts``), an expected failure 1. Anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: ClickContext) -> Any:
        # typer 0.29 (pinned) ships its own click: its parser raises these, not the `click` package's.
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError):
            raise
        except UsageError as exc:  # also a subcommand's options: they are parsed inside this invoke
            _fail(_usage_line(exc), exc.exit_code)
        except typer.TyperException:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if _debug(ctx):
                raise
            if isinstance(exc, KeyboardInterrupt) or interrupts.received():
                _fail(str(exc) if isinstance(exc, interrupts.Interrupted) and str(exc) else
                      f"interrupted (Ctrl-C): {_command(ctx)} stopped; run it again to start over", interrupts.EXIT_INTERRUPTED)
            message = describe_expected_error(exc)
            if message is None:
                raise
            _fail(message, EXIT_FAILURE)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {' '.join(message.split())}", soft_wrap=True)
    raise typer.Exit(code) from None


def _usage_line(exc: UsageError) -> str:
    """``--bucket: invalid value 's3://x'; ...`` rather than the boxed usage text: one line, the value and the fix."""
    hint = exc.param_hint if isinstance(exc, BadParameter) else None
    message = f"{hint}: {exc.message}" if isinstance(hint, str) else exc.format_message()  # str: our own checks
    return f"{message} (see {exc.ctx.command_path if exc.ctx else 'coldstart'} --help)"


def _command(ctx: ClickContext) -> str:
    return " ".join(part for part in (ctx.command_path, ctx.invoked_subcommand) if part)


def _debug(ctx: ClickContext) -> bool:
    # From the parsed options, not ctx.obj: a bad config value fails before ctx.obj exists.
    return bool(ctx.params.get("debug")) or os.environ.get("COLDSTART_DEBUG") == "1"


app = typer.Typer(
    cls=_Group,
    name="coldstart",
    help="Operate the vLLM cold-start stack: upload the model, build and publish the image-cache snapshot, "
    "generate and deploy the manifests, roll back and diagnose.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)


@dataclass
class CliState:
    config: AppConfig
    aws: AwsSession


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"-c {pair!r}: expected key=value, for example -c snapshotParameterName=/my/param")
        overrides[key.removeprefix("coldstart:")] = value
    return overrides


@app.callback()
def _main(
    ctx: typer.Context,
    region: Annotated[str | None, typer.Option(help="AWS region (default: coldstart:region, then AWS_REGION / the profile's).")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS named profile (default: AWS_PROFILE or the default chain).")] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="Override a config key like `cdk -c`: -c snapshotParameterName=/x (repeatable)."),
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks instead of one-line errors.")] = False,
) -> None:
    try:
        config = load_default_config(**_parse_overrides(context or []))
    except ConfigError as exc:
        if debug:
            raise
        _fail(f"configuration: {exc}", names.EXIT_BAD_INPUT)  # a -c key or value is bad input on the command line, like an option
    ctx.obj = CliState(config=config, aws=AwsSession(region=region or config.region, profile=profile))


def _state(ctx: typer.Context) -> CliState:
    return ctx.obj


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


# --- setup-model-s3 ---------------------------------------------------------------------------------


@app.command("setup-model-s3")
def setup_model_s3(
    ctx: typer.Context,
    bucket: Annotated[str | None, typer.Option(help=f"Target bucket (default: the {names.STORAGE_STACK} stack's {names.OUTPUT_BUCKET_NAME}).")] = None,
    prefix: Annotated[str | None, typer.Option(help="Key prefix (default: coldstart:modelPrefix).")] = None,
    from_dir: Annotated[
        Path | None, typer.Option("--from-dir", help="Upload this local folder instead of downloading from the Hugging Face Hub.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Hugging Face repo id (default: coldstart:modelSourceId). HF_TOKEN for gated models.")] = None,
    revision: Annotated[str | None, typer.Option(help="Hub revision (branch, tag or commit) to download.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Parts uploaded in parallel.")] = 16,
    chunk_mib: Annotated[int, typer.Option(min=5, max=5120, help="Multipart part size in MiB (S3 minimum 5).")] = 64,
    prune: Annotated[bool, typer.Option(help="Delete other *.safetensors directly under the prefix (they would load as part of the model).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check and plan only; upload nothing.")] = False,
) -> None:
    """Copy the model to s3://<bucket>/<modelPrefix>/ for vLLM's Run:ai streamer.

    Checks the layout first (all *.safetensors directly in the folder with config.json and a tokenizer, every safetensors header parses and matches the file size) and refuses a model that would not load, before uploading anything. Files already in S3 with the same size and SHA-256 are skipped; uploads are multipart and concurrent; everything is verified afterwards.
    """
    state = _state(ctx)
    if bucket is not None:
        from k8s_charts.inputs import ChartInputError, check_bucket_name

        try:
            check_bucket_name(bucket, "--bucket")
        except ChartInputError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--bucket: "), param_hint="--bucket") from None
    prefix = (prefix or state.config.modelPrefix).strip("/")
    if from_dir is None:
        repo = source or state.config.modelSourceId
        out.print(f"downloading {repo} from the Hugging Face Hub ...")
        folder = model_upload.download_from_hub(repo, revision)
    else:
        folder = from_dir
    files = model_layout.check_model_folder(folder)
    out.print(f"layout ok: {len(files)} files, {sum(1 for f in files if f.name.endswith('.safetensors'))} safetensors, "
              f"{_gib(sum(f.size for f in files))} in {folder}")

    s3 = state.aws.client("s3")
    bucket = resolve_bucket(state.aws.client("cloudformation"), bucket)
    with _progress() as progress:
        task = progress.add_task("checksums", total=sum(f.size for f in files))
        digests = {}
        for f in files:
            digests[f.name] = model_upload.sha256_of(f.path)
            progress.advance(task, f.size)
    plan = model_upload.plan_upload(s3, bucket, prefix, files, digests)
    if plan.stray_weights and not prune:
        raise OperatorError(
            f"s3://{bucket}/{prefix}/ already holds other safetensors ({', '.join(k.rsplit('/', 1)[-1] for k in plan.stray_weights[:3])}) "
            "that vLLM would load with this model; pass --prune to delete them or choose another --prefix"
        )
    out.print(f"s3://{bucket}/{prefix}/: {len(plan.upload)} to upload ({_gib(plan.upload_bytes)}), {len(plan.skip)} unchanged (skipped)"
              + (f", {len(plan.stray_weights)} stray safetensors to delete" if plan.stray_weights else ""))
    if dry_run:
        out.print("dry run: nothing uploaded")
        return
    if plan.upload:
        with _progress() as progress:
            task = progress.add_task("upload", total=plan.upload_bytes)
            model_upload.upload(s3, plan, model_upload.transfer_config(concurrency, chunk_mib), lambda n: progress.advance(task, n))
    model_upload.verify(s3, plan, files)
    if plan.stray_weights:
        model_upload.delete_keys(s3, bucket, plan.stray_weights)
    out.print(f"verified {len(files)} files; vLLM: --model s3://{bucket}/{prefix} --load-format runai_streamer")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=out, transient=False,
    )


# --- create-snapshot ----------------------------------------------------------------------------------


@app.command("create-snapshot")
def create_snapshot(
    ctx: typer.Context,
    state_machine_arn: Annotated[str | None, typer.Option(help=f"Pipeline ARN (default: the {names.PIPELINE_STACK} stack's output).")] = None,
    input_json: Annotated[str | None, typer.Option("--input", help='Execution input as a JSON object, e.g. \'{"images": [...]}\'.')] = None,
    force: Annotated[bool, typer.Option(help='Add "force": true to the input: rebuild even if the published snapshot is current.')] = False,
    poll_seconds: Annotated[float, typer.Option(min=0.0, help="Seconds between history polls.")] = 10.0,
    verbose: Annotated[bool, typer.Option(help="Also show Wait/Choice states and repeated polls.")] = False,
) -> None:
    """Build and publish a snapshot: start the pipeline (or attach to the running one) and follow it.

    Prints each state with its elapsed time, then the published snapshot ID. On failure prints the failing state with its error and cause, and exits 1. Ctrl-C detaches; the build keeps running.
    """
    state = _state(ctx)
    execution_input = follow_ops.parse_input(input_json, force)
    sfn = state.aws.client("stepfunctions")
    arn = resolve_state_machine(state.aws.client("cloudformation"), state_machine_arn)
    execution, attached = follow_ops.start_or_attach(sfn, arn, execution_input)
    if attached and (input_json or force):
        err.print("note: a build is already running; attaching to it (--input/--force not applied)")
    out.print(f"{'attached to' if attached else 'started'} {execution}")
    while True:
        try:
            result = follow_live(sfn, execution, verbose=verbose, poll_seconds=poll_seconds)
        except KeyboardInterrupt:
            raise interrupts.Interrupted(f"detached (Ctrl-C); the build keeps running: {execution} "
                                         "(re-run create-snapshot to attach)") from None
        if not result.superseded_by:
            break
        execution = result.superseded_by  # a newer push took over the build: follow that one
        out.print(f"superseded; following {execution}")
    finish_follow(state, result)


def follow_live(sfn: Any, execution: str, *, verbose: bool, poll_seconds: float) -> follow_ops.FollowResult:
    """Follow with a spinner naming the running state (terminals only; logs and pipes get the lines)."""
    with out.status("waiting for the first state ...") as status:

        def emit(line: follow_ops.TraceLine) -> None:
            if line.kind == "enter":
                status.update(f"{line.text} ...")
            print_trace_line(line, verbose)

        return follow_ops.follow(sfn, execution, emit, poll_seconds=poll_seconds)


def print_trace_line(line: follow_ops.TraceLine, verbose: bool = False) -> None:
    if line.quiet and not verbose:
        return
    clock = f"[{line.at:7.1f}s]"
    if line.kind == "exit":
        out.print(f"{clock} ✓ {line.text}  {line.elapsed:.1f}s")
    elif line.kind == "enter":
        out.print(f"{clock} ▶ {line.text}")
    elif line.kind == "error":
        out.print(f"{clock} ✗ {line.text}", soft_wrap=True)
    else:
        out.print(f"{clock} {line.text}", soft_wrap=True)


def finish_follow(state: CliState, result: follow_ops.FollowResult) -> str:
    """Print the outcome; return the snapshot ID or raise OperatorError (exit 1) on failure."""
    if not result.succeeded:
        raise OperatorError(
            f"build {result.status} in state {result.failed_state or '?'}: {result.error}" + (f": {result.cause}" if result.cause else "")
        )
    snapshot_id = result.snapshot_id or _published_by(state, result.execution_arn)
    if result.already_published:
        out.print("already published: same images and Bottlerocket version; nothing rebuilt (--force rebuilds)")
    out.print(f"snapshot: {snapshot_id}")
    return snapshot_id


def _published_by(state: CliState, execution_arn: str) -> str:
    """The execution output had no snapshotId: fall back to what the parameter says now."""
    ssm = state.aws.client("ssm")
    parameter = state.config.snapshotParameterName
    published = snapshot_ops.published_snapshot_id(ssm, parameter)
    if published is None:
        raise OperatorError(f"the build succeeded but {parameter} is not set; check the pipeline's publish step")
    try:
        metadata = json.loads(parameter_store.get(ssm, names.metadata_parameter_name(parameter)) or "")
    except (ClientError, ValueError):  # advisory here: only used to tell "nothing new" apart
        metadata = {}
    if metadata.get("executionArn") not in (None, execution_arn):
        err.print(f"note: this build published nothing new (up to date?); {parameter} still names {published}")
    return published


# --- snapshots and rollback -------------------------------------------------------------------------


@app.command("snapshots")
def snapshots(ctx: typer.Context) -> None:
    """List the pipeline's snapshots (by its managed-by tag) and which one is published."""
    state = _state(ctx)
    rows = snapshot_ops.snapshot_rows(state.aws.client("ec2"), state.aws.client("ssm"), state.config.snapshotParameterName)
    if not rows:
        out.print("no snapshots built by the pipeline yet (make create-snapshot)")
        return
    table = Table(
        Column("ID", no_wrap=True, min_width=len("snap-0123456789abcdef0")), Column("state", no_wrap=True),
        Column("images", overflow="fold"), Column("Bottlerocket", no_wrap=True), Column("size", no_wrap=True),
        Column("age", no_wrap=True), Column("published", no_wrap=True),
    )
    now = datetime.now(UTC)
    for row in rows:
        mark = "● published" if row.published else ("rollback target" if row.rollback_target else "")
        table.add_row(row.snapshot_id, row.state, row.images, row.bottlerocket_version, f"{row.size_gib} GiB",
                      snapshot_ops.age(row.started, now), mark)
    # Piped or captured output has no width: print one row per line rather than fold at 80 columns.
    (out if out.is_terminal else Console(file=out.file, width=220, highlight=False, markup=False)).print(table)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Publish the previous snapshot again (from the parameter's history); metadata is marked as a rollback.

    Refuses when there is no previous snapshot, or it was deleted or is not completed. Nodes move to it after `make update-manifests deploy-apps` (Karpenter drift, paced by the NodePool budget).
    """
    state = _state(ctx)
    ssm, ec2 = state.aws.client("ssm"), state.aws.client("ec2")
    parameter = state.config.snapshotParameterName
    plan = snapshot_ops.plan_rollback(ssm, ec2, parameter)
    out.print(f"{parameter}: {plan.current} -> {plan.target} (built {plan.metadata.get('createdAt', '?')}, "
              f"Bottlerocket {plan.metadata.get('bottlerocketVersion', '?')})")
    if not yes and not typer.confirm("Publish it?", default=False):
        raise OperatorError("rollback cancelled; nothing changed")
    _enable_fast_snapshot_restore(state, ec2, plan.target)
    snapshot_ops.apply_rollback(ssm, parameter, plan)
    _disable_fast_snapshot_restore(state, ec2, plan.current)
    out.print(f"published {plan.target} (rollback from {plan.current}); next: make update-manifests deploy-apps")


def _enable_fast_snapshot_restore(state: CliState, ec2: Any, snapshot_id: str) -> None:
    """Before publishing, so nodes launched after the rollback restore without lazy loading."""
    azs = list(state.config.fastSnapshotRestoreAzs)
    if azs:
        _report_fsr(f"Fast Snapshot Restore not enabled on {snapshot_id}", lambda: fsr.enable_fsr(ec2, snapshot_id, azs))


def _disable_fast_snapshot_restore(state: CliState, ec2: Any, snapshot_id: str) -> None:
    """After publishing: FSR bills $0.75/hour per AZ while on, so the superseded snapshot loses it."""
    if state.config.fastSnapshotRestoreAzs:
        _report_fsr(f"Fast Snapshot Restore still on for {snapshot_id} (billed hourly)", lambda: fsr.disable_fsr(ec2, snapshot_id))


def _report_fsr(problem: str, call: Callable[[], dict[str, Any]]) -> None:
    """FSR is an optimisation: its failure is a warning, never a reason to leave a bad snapshot published."""
    try:
        errors = call()["errors"]
    except ClientError as exc:
        errors = {"all zones": describe_expected_error(exc)}
    for az, message in errors.items():
        err.print(f"warning: {problem} in {az}: {message}")


# --- doctor ---------------------------------------------------------------------------------------


_MARKS = {doctor_ops.PASS: ("PASS", "green"), doctor_ops.FAIL: ("FAIL", "red"), doctor_ops.SKIP: ("SKIP", "yellow"), doctor_ops.WARN: ("WARN", "yellow")}


@app.command("doctor")
def doctor(
    ctx: typer.Context,
    manifests_dir: Annotated[Path, typer.Option(help="Folder of the generated manifests.")] = DIST,
    kube_context: Annotated[str | None, typer.Option(help="kubectl context (default: the current one).")] = None,
) -> None:
    """Run the troubleshooting checks: parameter -> snapshot -> manifests -> (with kubectl) nodes, pods, role.

    Each check prints PASS, FAIL (with the fix) or SKIP; cluster checks are skipped without kubectl or a kubeconfig. Exits 1 when any check fails.
    """
    state = _state(ctx)
    kubectl = Kubectl(context=kube_context)
    missing = kubectl.unavailable_reason()
    dctx = doctor_ops.DoctorContext(
        config=state.config, ssm=state.aws.client("ssm"), ec2=state.aws.client("ec2"), cfn=state.aws.client("cloudformation"),
        eks=state.aws.client("eks"), manifests_dir=manifests_dir, kubectl=None if missing else kubectl, kubectl_missing=missing or "",
        smoke=None if missing else lambda: _smoke_through_port_forward(kubectl, state.config.vllmNamespace, SmokeVia.vllm),
    )
    failed = 0
    for result in doctor_ops.run_checks(dctx):
        out.print(Text.assemble(_MARKS[result.status], f"  {result.name}: {result.detail}"), soft_wrap=True)
        if result.status == doctor_ops.FAIL:
            failed += 1
            out.print(f"      fix: {result.fix}", soft_wrap=True)
    if failed:
        raise OperatorError(f"doctor: {failed} check(s) failed")


# --- manifests ------------------------------------------------------------------------------------


@app.command("update-manifests", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def update_manifests(
    ctx: typer.Context,
    outdir: Annotated[Path, typer.Option(help="Where to write the *.k8s.yaml files.")] = DIST,
    snapshot_id: Annotated[str | None, typer.Option(help="Pin this snapshot instead of the published one.")] = None,
) -> None:
    """Synthesize dist/*.k8s.yaml (Karpenter EC2NodeClass + NodePool, vLLM) from the published snapshot.

    Runs the charts' synth (as python -m k8s_charts.synth) on this command's config, region and profile; extra arguments after the options are the synth's own flags (for example --model-bucket or --offline). Prints the snapshot the EC2NodeClass now references.
    """
    from k8s_charts import synth  # starts the jsii runtime: only for this command
    from k8s_charts.inputs import ChartInputError
    from settings.config import ConfigError

    state = _state(ctx)
    # This command's --outdir, --snapshot-id and region win over the same flags among the extra ones.
    flags = synth.parse_args(ctx.args)
    flags.outdir, flags.snapshot_id, flags.region = str(outdir), snapshot_id or flags.snapshot_id, state.aws.region or flags.region
    session = boto3.session.Session(profile_name=state.aws.profile, region_name=state.aws.region)
    try:
        result = synth.synthesize_from_args(synth.load_cfg(flags.context, base=state.config), flags, session)
    except (ConfigError, ChartInputError) as exc:
        err.print(f"error: {exc}")
        raise OperatorError(f"manifest synthesis failed (exit {names.EXIT_BAD_INPUT}); see the message above") from None
    synth.print_result(result)
    out.print(f"EC2NodeClass snapshotID: {result.snapshot_id or 'none (nodes start with an empty data volume)'}")


@app.command("deploy-apps")
def deploy_apps(
    manifests_dir: Annotated[Path, typer.Option(help="Folder of the generated manifests.")] = DIST,
    kube_context: Annotated[str | None, typer.Option(help="kubectl context (default: the current one).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate on the server without changing anything (kubectl --dry-run=server).")] = False,
) -> None:
    """Apply the generated manifests: kubectl apply -f dist/ (run update-manifests first)."""
    files = sorted(manifests_dir.glob("*.k8s.yaml"))
    if not files:
        raise OperatorError(f"no *.k8s.yaml in {manifests_dir}; run make update-manifests first")
    kubectl = Kubectl(context=kube_context)
    missing = kubectl.unavailable_reason()
    if missing:
        raise OperatorError(f"cannot deploy: {missing}")
    args = ["apply", *(a for f in files for a in ("-f", str(f))), *(["--dry-run=server"] if dry_run else [])]
    code = kubectl.run(args)
    if code != 0:
        raise OperatorError(f"kubectl apply failed (exit {code}); see its message above")
    out.print(f"applied {len(files)} manifest file(s) from {manifests_dir}; check with: make doctor")


# --- demo chat app: build-push-images, chat-url, smoke ----------------------------------------------


class SmokeVia(StrEnum):
    vllm = "vllm"
    chat = "chat"


@app.command("build-push-images")
def build_push_images(ctx: typer.Context) -> None:
    """Build the demo chat image (apps/chat) with docker or finch and push it to its ECR repository as git-<sha>.

    The repository is the storage stack's output; the tag is this checkout's commit (apps/chat must be
    committed), which update-manifests deploys. A tag already in the repository is not rebuilt."""
    state = _state(ctx)
    if not state.config.chatEnabled:
        raise OperatorError("the chat app is disabled (coldstart:chatEnabled=false); enable it to build its image")
    cli_path = image_ops.find_container_cli()
    tag = image_ops.clean_tag()
    repository_uri = stack_output(state.aws.client("cloudformation"), names.STORAGE_STACK, names.OUTPUT_CHAT_REPOSITORY_URI)
    ecr = state.aws.client("ecr")
    if image_ops.already_pushed(ecr, state.config.chatRepository, tag):
        out.print(f"{repository_uri}:{tag} is already in ECR (tags are immutable); nothing to build")
        return
    plan = image_ops.PushPlan(cli=cli_path, repository_uri=repository_uri, tag=tag,
                              platform=image_ops.platform_for(state.config.systemNodeInstanceType),
                              context=image_ops.app_context())
    pushed = image_ops.build_and_push(plan, ecr, say=lambda line: err.print(f"==> {line}"))
    out.print(f"pushed {pushed}; next: make update-manifests && make deploy-apps")


@app.command("chat-url")
def chat_url(ctx: typer.Context) -> None:
    """Print how to open the demo chat page: the chat Service is ClusterIP only (nothing public)."""
    ns = _state(ctx).config.vllmNamespace
    out.print(f"kubectl port-forward -n {ns} svc/{names.CHAT_APP_LABEL} 8080:{names.CHAT_SERVICE_PORT}")
    out.print("then open http://127.0.0.1:8080/ (the page says 'model starting' until vLLM is ready)")


@app.command("smoke")
def smoke(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="Base URL to test (e.g. http://127.0.0.1:8000); omit to port-forward to the "
                                                  "in-cluster Service with kubectl.")] = None,
    via: Annotated[SmokeVia, typer.Option(help="vllm: POST /v1/chat/completions straight to vLLM; chat: through the chat app's /api/chat.")] = "vllm",  # type: ignore[assignment]
    prompt: Annotated[str, typer.Option(help="The prompt to send.")] = smoke_ops.DEFAULT_PROMPT,
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Most tokens to generate.")] = 32,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the server (connect, and each silence in the stream).")] = 60.0,
    kube_context: Annotated[str | None, typer.Option(help="kubectl context (default: the current one).")] = None,
) -> None:
    """One streamed chat completion against the deployed model: prints TTFT, tokens/s and total; exits 1 on failure."""
    cfg = _state(ctx).config
    api_path = smoke_ops.VLLM_CHAT_PATH if via == SmokeVia.vllm else smoke_ops.CHAT_APP_PATH
    if url is not None:
        result = smoke_ops.run_smoke(url, prompt=prompt, max_tokens=max_tokens, timeout=timeout, api_path=api_path)
    else:
        kubectl = Kubectl(context=kube_context)
        missing = kubectl.unavailable_reason()
        if missing:
            raise OperatorError(f"cannot port-forward: {missing}; or pass --url")
        result = _smoke_through_port_forward(kubectl, cfg.vllmNamespace, via, prompt=prompt, max_tokens=max_tokens, timeout=timeout)
    out.print(smoke_ops.format_result(result))


def _smoke_through_port_forward(kubectl: Kubectl, namespace: str, via: SmokeVia, **options: Any) -> smoke_ops.SmokeResult:
    service, port = ((names.VLLM_APP_LABEL, names.VLLM_PORT) if via == SmokeVia.vllm
                     else (names.CHAT_APP_LABEL, names.CHAT_SERVICE_PORT))
    api_path = smoke_ops.VLLM_CHAT_PATH if via == SmokeVia.vllm else smoke_ops.CHAT_APP_PATH
    with port_forward.forwarded(kubectl, namespace, service, port) as local:
        err.print(f"==> port-forward svc/{service} -> {local}")
        return smoke_ops.run_smoke(local, api_path=api_path, **options)


# --- report ---------------------------------------------------------------------------------------


@app.command("report")
def report(
    ctx: typer.Context,
    bundle: Annotated[Path | None, typer.Argument(help="Saved kubectl output (a folder or file); omit to read the live cluster.")] = None,
    pod: Annotated[str | None, typer.Option(help="Pod to report on (default: the newest vLLM pod).")] = None,
    namespace: Annotated[str | None, typer.Option(help="Namespace (default: coldstart:vllmNamespace).")] = None,
    container: Annotated[str | None, typer.Option(help="Container (default: the vLLM one).")] = None,
    budget: Annotated[Path | None, typer.Option(help="Budget file (JSON or YAML) to compare against.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
    save_bundle: Annotated[Path | None, typer.Option(help="Also save the evidence here for offline replay.")] = None,
    kube_context: Annotated[str | None, typer.Option(help="kubectl context (default: the current one).")] = None,
    chart: Annotated[Path | None, typer.Option(help="Also draw the phase waterfall against the budget (.svg or .png).")] = None,
) -> None:
    """Show a vLLM pod's cold start phase by phase (node launch, image, model load, compile, ready) against a budget."""
    from coldstart import report as report_api

    state = _state(ctx)
    # Output paths are checked before anything is read: a traceback after minutes of collection helps nobody.
    if save_bundle is not None and save_bundle.exists() and not save_bundle.is_dir():
        raise typer.BadParameter(f"{str(save_bundle)!r} exists and is not a directory; name a new or empty folder",
                                 param_hint="--save-bundle")
    if chart is not None and chart.suffix.lower() not in (".svg", ".png"):
        raise typer.BadParameter(f"{str(chart)!r}: the chart is written as .svg or .png", param_hint="--chart")
    if chart is not None and chart.parent.exists() and not chart.parent.is_dir():
        raise typer.BadParameter(f"{str(chart.parent)!r} is not a directory", param_hint="--chart")
    if bundle is not None:
        inputs = report_api.load_bundle(bundle, pod_name=pod, container=container)
    else:
        ns = namespace or state.config.vllmNamespace
        inputs = report_api.collect_live(pod or _newest_vllm_pod(ns, kube_context), ns, container=container, context=kube_context)
    if save_bundle is not None:
        report_api.save_bundle(inputs, save_bundle)
    timeline = report_api.build_timeline(inputs)
    chosen = report_api.load_budget(budget) if budget else report_api.default_budget()
    if as_json:
        out.print_json(json.dumps(report_api.to_json(timeline, chosen)))
    else:
        out.print(report_api.render_table(timeline, chosen))
    if chart is not None:
        from coldstart.report.chart import render_chart

        written = render_chart(timeline, chosen, chart)
        if not as_json:
            out.print(f"Chart: {written}")


# --- plan -----------------------------------------------------------------------------------------


@app.command("plan")
def plan(
    ctx: typer.Context,
    model_gib: Annotated[float, typer.Option(help="Size of the model's safetensors in GiB (default: the seed's 3.9).")] = 3.9,
    compile_cache: Annotated[str, typer.Option(help="auto (hit when compileCacheS3 is on), hit or miss.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
) -> None:
    """Print the MODELLED time to ready of the first pod on a new GPU node for the configured levers (not a measurement)."""
    from coldstart import plan as plan_api

    if compile_cache not in ("auto", "hit", "miss"):
        raise OperatorError(f"--compile-cache {compile_cache!r}: expected auto, hit or miss")
    result = plan_api.build_plan(_state(ctx).config, model_gib=model_gib,
                                 compile_cache_hit=None if compile_cache == "auto" else compile_cache == "hit")
    if as_json:
        out.print_json(json.dumps(plan_api.plan_json(result)))
    else:
        out.print(plan_api.render_plan(result))


def _newest_vllm_pod(namespace: str, kube_context: str | None) -> str:
    kubectl = Kubectl(context=kube_context)
    missing = kubectl.unavailable_reason()
    if missing:
        raise OperatorError(f"cannot read the cluster: {missing}; or report from a saved bundle: coldstart report <folder>")
    pods = kubectl.get_json("get", "pods", "-n", namespace, "-l", f"{doctor_ops.APP_LABEL}={names.VLLM_APP_LABEL}")["items"]
    if not pods:
        raise OperatorError(f"no vLLM pod in namespace {namespace}; pass --pod")
    return str(max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))["metadata"]["name"])


# --- warm-cache -----------------------------------------------------------------------------------


@app.command("warm-cache")
def warm_cache(
    ctx: typer.Context,
    manifests_dir: Annotated[Path, typer.Option(help="Folder of the generated manifests (vllm + gpu-nodes).")] = DIST,
    apply: Annotated[bool, typer.Option("--apply", help="Create the Jobs with kubectl (default: print them).")] = False,
    kube_context: Annotated[str | None, typer.Option(help="kubectl context (default: the current one).")] = None,
) -> None:
    """After a new snapshot: run one warm-up Job per GPU family of the NodePool so the compile cache in S3 is filled before users come.

    Each Job runs the Deployment's own pod (same image, cache restore) on that family, with vLLM as a native sidecar and the publisher as the main container; it completes once the cache is published. Dry run by default: prints the manifests.
    """
    from coldstart.ops import warm_cache as warm_ops

    state = _state(ctx)
    warm = warm_ops.plan(manifests_dir, publish_mode=state.config.compileCachePublish)
    if not apply:
        out.print(warm.to_yaml().rstrip())
        err.print(f"dry run: {len(warm.job_names)} Job(s) for {', '.join(warm.families)}; add --apply to create them")
        return
    kubectl = Kubectl(context=kube_context)
    missing = kubectl.unavailable_reason()
    if missing:
        raise OperatorError(f"cannot reach the cluster: {missing}")
    import tempfile

    # Not in dist/: deploy-apps applies every dist/*.k8s.yaml, and these Jobs run only on demand.
    with tempfile.TemporaryDirectory(prefix="warm-cache-") as scratch:
        warm_ops.apply(kubectl, warm, Path(scratch) / "warm-cache.yaml")
    out.print(f"created {', '.join(warm.job_names)} in {warm.namespace}; follow with: kubectl get jobs -n {warm.namespace} "
              f"-l app={names.WARM_CACHE_APP_LABEL} -w")


# --- teardown -------------------------------------------------------------------------------------


@app.command("teardown")
def teardown(
    kube_context: Annotated[str | None, typer.Option(help="kubectl context (default: the current one).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    poll_seconds: Annotated[float, typer.Option(help="Seconds between checks.")] = 15.0,
    timeout_minutes: Annotated[float, typer.Option(help="Give up (non-zero exit) after this long.")] = 20.0,
) -> None:
    """Before destroying the cluster stack: delete the NodePools, wait until Karpenter has terminated its nodes, then delete the EC2NodeClasses (their instance profiles).

    Destroying the cluster while Karpenter's nodes run orphans EC2 instances and blocks the VPC's deletion. `make destroy` runs this first.
    """
    import time

    from coldstart.ops import teardown as teardown_ops

    kubectl = Kubectl(context=kube_context)
    missing = kubectl.unavailable_reason()
    if missing:
        raise OperatorError(f"cannot reach the cluster: {missing}. Without it Karpenter's nodes cannot be removed first; "
                            "terminate instances tagged karpenter.sh/nodepool yourself before destroying the cluster stack")
    if not yes:
        typer.confirm("Delete every Karpenter NodePool and EC2NodeClass (all GPU nodes and the vLLM pods on them)?", abort=True)
    teardown_ops.teardown(kubectl, sleep=lambda: time.sleep(poll_seconds),
                          max_polls=max(1, int(timeout_minutes * 60 / poll_seconds)), emit=out.print)


# --- rehearsal ------------------------------------------------------------------------------------


@app.command("rehearse")
def rehearse(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(help="Also show Wait/Choice states, the handlers' logs and the emulator's requests.")] = False,
    template: Annotated[Path | None, typer.Option(
        help=f"Rehearse this synthesized pipeline template (cdk.out/{names.PIPELINE_STACK}.template.json after `make synth`: "
        "the template you deploy; `make demo` passes it) instead of synthesizing one (~10 s).")] = None,
) -> None:
    """Rehearse offline (no AWS account, under a minute): build and publish a snapshot in an embedded AWS emulator, then generate the manifests from it.

    Synthesizes the pipeline stack (or takes --template), creates its real Lambda handlers and real state machine in moto, runs it with the create-snapshot trace, synthesizes the charts from the emulated Parameter Store, shows the EC2NodeClass and runs the doctor's checks. Stops everything it started. Prints the published snapshot ID last.
    """
    from coldstart import rehearsal

    state = _state(ctx)
    try:
        loaded = rehearsal.load_template(template, state.config) if template is not None else None
    except rehearsal.TemplateError as exc:
        raise typer.BadParameter(str(exc), param_hint="--template") from None
    result = rehearsal.rehearse(state.config, out.print, lambda line: print_trace_line(line, verbose), verbose=verbose,
                                template=loaded)
    out.print("EC2NodeClass (synthesized from the emulated Parameter Store):")
    out.print(result.nodeclass_yaml.rstrip())
    for check in result.checks:
        out.print(Text.assemble(_MARKS[check.status], f"  {check.name}: {check.detail}"))
    if result.snapshot_id not in result.nodeclass_snapshot_ids:
        raise OperatorError(f"the EC2NodeClass references {result.nodeclass_snapshot_ids or 'no snapshot'}, not the published {result.snapshot_id}")
    failed = [c.name for c in result.checks if c.status == doctor_ops.FAIL]
    if failed:
        raise OperatorError(f"rehearsal checks failed: {', '.join(failed)}")
    out.print(f"rehearsal passed in {result.seconds:.0f}s; emulator stopped")
    out.print("next: deploy for real (README \"Deploying for real\"): make bootstrap, make setup-infra, make setup-model-s3, "
              "make setup-pipeline, make create-snapshot, make build-push-images, then make update-manifests deploy-apps smoke doctor")
    out.print(f"snapshot: {result.snapshot_id}")  # last line: scripts read the ID from it
