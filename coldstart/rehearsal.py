"""Local rehearsal: the whole build -> publish -> manifests path, offline, in well under a minute.

An embedded moto server (127.0.0.1, a free port, this process so the in-process Lambda shim
applies) stands in for AWS. The pipeline stack is synthesized, its REAL Lambda handlers and REAL
state machine are created from the template (``coldstart.emulator``), the pipeline runs with
one-second polls and is followed with the same code as ``create-snapshot``; then the charts'
synth reads the emulated Parameter Store and the EC2NodeClass is shown, and the doctor's AWS and
manifest checks run against it.

Everything it starts, it stops: the server (and its thread), the temporary folder, the emulator's
patches, moto's backends and every environment variable it set. The jsii (node) runtime started
by synthesis is the one exception: it belongs to the Python process and ends with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from coldstart.emulator.in_process import patched_env
from coldstart.ops import doctor as doctor_ops
from coldstart.ops import follow as follow_ops
from coldstart.ops.errors import OperatorError
from settings import names
from settings.config import AppConfig

REGION = "us-west-2"
TEMP_PREFIX = "coldstart-rehearsal-"
MODEL_BUCKET = "vllm-coldstart-rehearsal-models"
# Fast, bounded loops: the emulated world answers at once, so one-second polls finish in seconds.
FAST: dict[str, Any] = {"pollIntervalSeconds": 1, "triggerDebounceSeconds": 0, "maxPolls": 10}
# How long a stopped execution may take to finish the state it is in (an in-process handler call) before the
# rehearsal stops the server anyway; only reached if a handler hangs.
THREADS_GRACE_S = 30
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "rehearsal", "AWS_SECRET_ACCESS_KEY": "rehearsal", "AWS_SESSION_TOKEN": "rehearsal"}


@dataclass
class RehearsalResult:
    snapshot_id: str
    nodeclass_snapshot_ids: list[str]
    nodeclass_yaml: str
    checks: list[doctor_ops.CheckResult] = field(default_factory=list)
    seconds: float = 0.0




@contextlib.contextmanager
def quiet_logs(enabled: bool) -> Iterator[None]:
    """Hide the server's request log, the handlers' INFO logs and the interpreter's error logs.

    moto's interpreter logs at ERROR every JSONPath it evaluates against a missing field, even
    where the definition expects that (a Choice on an optional key); the trace shows real errors.
    """
    interpreter = logging.getLogger("moto.stepfunctions")
    previous, previous_level = logging.root.manager.disable, interpreter.level
    with warnings.catch_warnings():
        if enabled:
            logging.disable(logging.WARNING)
            interpreter.setLevel(logging.CRITICAL)
            # Powertools warns on every invocation that publishes no metric (metrics are disabled here).
            warnings.filterwarnings("ignore", message="No application metrics to publish")
        try:
            yield
        finally:
            logging.disable(previous)
            interpreter.setLevel(previous_level)


@contextlib.contextmanager
def state_machine_execution() -> Iterator[None]:
    """moto's interpreter on for the server (a global setting), back to its previous value after."""
    from moto.core.config import default_user_config

    from coldstart.emulator import enable_state_machine_execution

    previous = dict(default_user_config["stepfunctions"])
    enable_state_machine_execution()
    try:
        yield
    finally:
        default_user_config["stepfunctions"].clear()
        default_user_config["stepfunctions"].update(previous)


def _reset_moto() -> None:
    """Drop every emulated resource (what POST /moto-api/reset does), so nothing outlives the run."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@contextlib.contextmanager
def embedded_aws(region: str) -> Iterator[tuple[Any, str]]:
    """A moto server on 127.0.0.1 (port 0: the OS picks a free one) with this process's environment pointed at it."""
    from moto import server as moto_server

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        env = {"AWS_ENDPOINT_URL": url, "MOTO_PORT": str(port), "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
               "AWS_PROFILE": None, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               # moto's EC2 otherwise registers ~1300 stock AMIs per region (seconds of start-up); the pipeline
               # launches only the Bottlerocket AMI the rehearsal seeds.
               "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
               # The handlers' Powertools metrics print EMF lines to stdout: not wanted in the trace.
               "POWERTOOLS_METRICS_DISABLED": "true",
               # Set by the emulator's synth if absent; listed so it is restored like the rest.
               "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": os.environ.get("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"),
               **FAKE_CREDENTIALS}
        with patched_env(env), state_machine_execution():
            _reset_moto()
            yield server, url
    finally:
        server.stop()
        _reset_moto()


def rehearse(
    config: AppConfig,
    say: Callable[[str], None],
    trace: Callable[[follow_ops.TraceLine], None],
    *,
    region: str = REGION,
    poll_seconds: float = 0.2,
    verbose: bool = False,
    template: dict[str, Any] | None = None,
) -> RehearsalResult:
    """Run the rehearsal; returns what was published and what the manifests reference. ``template``: a synthesized
    pipeline template (``load_template``) to run instead of synthesizing one."""
    from coldstart import emulator

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        with quiet_logs(not verbose), embedded_aws(region) as (_server, url):
            say(f"emulated AWS: moto server at {url} (in-process, offline)")
            if template is None:
                say("synthesizing the pipeline stack ...")
                template = emulator.synthesize_pipeline_template(config, workdir / "cdk.out")
            else:
                say("pipeline stack: the given synthesized template")
            with emulator.in_process_lambdas(), emulator.fast_retries():
                gaps = emulator.AwsGaps(region=region, endpoint_url=url)
                with gaps.installed():
                    emulator.seed_bottlerocket(region, config.kubernetesVersion, endpoint_url=url)
                    digest = emulator.seed_ecr_image(boto3.client("ecr"), config.vllmRepository, config.vllmImageTag)
                    say(f"seeded: Bottlerocket {emulator.DEFAULT_BOTTLEROCKET_VERSION} parameters (aws-k8s-{config.kubernetesVersion}), "
                        f"ECR {config.vllmRepository}:{config.vllmImageTag} ({digest[:19]}...)")
                    pipeline = emulator.LocalPipeline(template, region=region, endpoint_url=url, config_overrides=FAST).deploy()
                    say(f"deployed {len(pipeline.function_arns)} Lambda functions and the state machine from the template")
                    sfn = boto3.client("stepfunctions")
                    execution = pipeline.start({})
                    with _stopped_on_exit(sfn, execution):
                        say(f"started {execution}")
                        outcome = follow_ops.follow(sfn, execution, trace, poll_seconds=poll_seconds)
            if not outcome.succeeded:
                raise OperatorError(f"rehearsal build {outcome.status} in state {outcome.failed_state}: {outcome.error}: {outcome.cause}")
            snapshot_id = outcome.snapshot_id or ""
            say(f"published {snapshot_id} to {config.snapshotParameterName}")
            ids, nodeclass = _synthesize_manifests(config, region, workdir / "dist", say)
            checks = [_temporary_dist_named(check, workdir / "dist")
                      for check in doctor_ops.run_checks(_doctor_context(config, workdir / "dist"))]
        return RehearsalResult(snapshot_id, ids, nodeclass, checks, time.monotonic() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _stopped_on_exit(sfn: Any, execution_arn: str) -> Iterator[None]:
    """However the run is left (Ctrl-C included), the execution ends while the emulator it calls is still up: stopped
    if still running, and moto's interpreter threads waited for. Otherwise they outlive the rehearsal and, with the
    server gone, log connection errors after its last line (moto/stepfunctions/parser/utils.py TMP_THREADS holds
    every thread the interpreter starts; they are daemons, so nothing else waits for them)."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.utils import TMP_THREADS

    try:
        yield
    finally:
        deadline = time.monotonic() + THREADS_GRACE_S
        if sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
            # moto's StopExecution fails (a server-side traceback) until the interpreter's thread has set the run up,
            # which the history's first event shows (moto/stepfunctions/parser/backend/execution.py to_history_output).
            while not sfn.get_execution_history(executionArn=execution_arn, maxResults=1)["events"] and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(ClientError):  # it ended meanwhile
                sfn.stop_execution(executionArn=execution_arn, error="RehearsalStopped", cause="the rehearsal stopped")
        for thread in list(TMP_THREADS):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


class TemplateError(ValueError):
    """The template given to rehearse cannot stand for this configuration's pipeline."""


def load_template(path: Path, config: AppConfig) -> dict[str, Any]:
    """A synthesized pipeline template to rehearse (``make demo`` passes cdk.out's, the template ``cdk deploy`` would
    deploy), checked against this command's configuration: the manifests are synthesized from the configuration and
    must read what the template's pipeline publishes. Only the FAST timings are replaced, in the functions' env."""
    from coldstart.emulator import EmulatorError, state_machine_resource, template_functions

    try:
        template = json.loads(path.read_text())
        state_machine_resource(template)
        pipeline_settings = [json.loads(spec.environment.get(names.ENV_PIPELINE_CONFIG) or "{}")
                             for spec in template_functions(template).values()]
    except OSError as exc:
        raise TemplateError(f"{str(path)!r}: cannot be read ({exc.strerror}); run `make synth` first, or leave --template out "
                            "to synthesize one") from None
    except (ValueError, KeyError, TypeError, AttributeError, EmulatorError) as exc:
        detail = f"no {exc.args[0]!r} key" if isinstance(exc, KeyError) else str(exc)
        raise TemplateError(f"{str(path)!r} is not a synthesized pipeline stack template ({detail}); pass "
                            f"cdk.out/{names.PIPELINE_STACK}.template.json") from None
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in config.pipeline_values().items() if k not in FAST}
    for settings in pipeline_settings:
        for key, value in wanted.items():
            if key in settings and settings[key] != value:
                raise TemplateError(f"{str(path)!r} was synthesized with coldstart:{key}={settings[key]!r}, this configuration has "
                                    f"{value!r}; synthesize again (`make synth`) or pass the same -c here")
    return template


def _synthesize_manifests(config: AppConfig, region: str, dist: Path, say: Callable[[str], None]) -> tuple[list[str], str]:
    """The charts' standalone synth on the rehearsal's config, reading the emulated Parameter Store.

    ``config`` carries the CLI's -c overrides (the FAST pipeline timings are only in the functions' env).
    """
    from k8s_charts.inputs import ChartInputError
    from k8s_charts.synthesize import synthesize

    boto3.client("s3").create_bucket(Bucket=MODEL_BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
    try:
        result = synthesize(config, outdir=dist, aws=boto3.session.Session(region_name=region), model_bucket=MODEL_BUCKET,
                            region=region)
    except ChartInputError as err:
        raise OperatorError(f"manifest synthesis failed: {err}") from None
    for line in [result.summary, *result.messages()]:
        say(f"synth: {line}")
    classes = doctor_ops.generated_snapshot_ids(dist)
    nodeclass = next((doc for path in sorted(dist.glob("*.k8s.yaml")) for doc in yaml.safe_load_all(path.read_text())
                      if isinstance(doc, dict) and doc.get("kind") == "EC2NodeClass"), None)
    if nodeclass is None:
        raise OperatorError(f"the synthesized manifests in {dist} hold no EC2NodeClass")
    return classes.get(nodeclass["metadata"]["name"], []), yaml.safe_dump(nodeclass, sort_keys=False)


def _doctor_context(config: AppConfig, dist: Path) -> doctor_ops.DoctorContext:
    return doctor_ops.DoctorContext(
        config=config, ssm=boto3.client("ssm"), ec2=boto3.client("ec2"), cfn=boto3.client("cloudformation"),
        eks=boto3.client("eks"), manifests_dir=dist, kubectl=None, kubectl_missing="the rehearsal has no cluster",
    )


TEMPORARY_DIST = "the rehearsal's manifests (a temporary folder, removed at the end)"


def _temporary_dist_named(check: doctor_ops.CheckResult, dist: Path) -> doctor_ops.CheckResult:
    """The doctor names the manifests folder by its path; the rehearsal's is gone by the time the line is
    read, so it is named for what it is: neither ./dist nor a path worth looking in."""
    from dataclasses import replace

    return replace(check, detail=check.detail.replace(f"{dist}/", f"{TEMPORARY_DIST}:").replace(str(dist), TEMPORARY_DIST))
