"""Offline emulator of the snapshot pipeline: a TEST AND REHEARSAL SHIM, never used in production.

It runs the REAL state-machine definition (taken from the synthesized PipelineStack template)
in moto's Step Functions interpreter, invoking the REAL Lambda handlers in-process, against moto's
EC2/SSM/ECR. Used by tests/pipeline (with ``moto.mock_aws``) and by the operator CLI's local
rehearsal (with a ``moto.server.ThreadedMotoServer`` on 127.0.0.1 in the same process).

What moto cannot do is filled in here, explicitly, by wrapping the handlers' boto3 clients
(``lambdas.snapshot_pipeline.clients.set_factory``):
- SSM agent status (``describe_instance_information`` is not implemented in moto);
- the pull command's checks and outcome (moto neither checks a document's parameters nor runs it, and
  reports every command Success with no output): the emulator refuses parameters the document's
  allowedPattern refuses, and "runs" the command by printing the verification lines the real script would print;
- Fast Snapshot Restore (not implemented in moto);
- injected faults: throttling, insufficient capacity, snapshot ``error``, command failures.
moto cannot run Lambda code without Docker, so ``in_process_lambdas`` patches
``moto.awslambda.models.LambdaFunction.invoke`` to import and call the handler in this process.

Nothing here imports pytest. Typical use::

    template = synthesize_pipeline_template(load_default_config())
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), in_process_lambdas():
        gaps = AwsGaps(region="us-west-2")
        with gaps.installed():
            seed_bottlerocket("us-west-2", "1.36")
            seed_ecr_image(boto3.client("ecr", region_name="us-west-2"), "vllm/vllm-openai", "v0.34.0")
            pipeline = LocalPipeline(template, region="us-west-2").deploy()
            result = pipeline.run({})

For the rehearsal against a ThreadedMotoServer: set ``MOTO_PORT`` to the server's port (moto's
interpreter calls Lambda at ``http://localhost:$MOTO_PORT``), pass ``endpoint_url`` to
``AwsGaps``/``LocalPipeline``, and call ``enable_state_machine_execution()`` once.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import io
import itertools
import json
import os
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-west-2"
DEFAULT_BOTTLEROCKET_VERSION = "1.66.0"
# The CUDA declaration of an image on nvidia/cuda 13.0.x (vLLM's default images since it switched to CUDA 13.0,
# vllm-project/vllm#39878): as copies of those base images' configs in public code show it, not read from the
# vLLM image itself (offline). The pipeline's CUDA gate reads the real one by digest.
VLLM_IMAGE_ENV = [
    "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "NVIDIA_REQUIRE_CUDA=cuda>=13.0 brand=unknown,driver>=535,driver<536 brand=grid,driver>=535,driver<536 "
    "brand=tesla,driver>=535,driver<536 brand=nvidia,driver>=535,driver<536",
    "CUDA_VERSION=13.0.2", "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
]


class EmulatorError(RuntimeError):
    """The template or the emulated environment is not what the emulator expects."""


# --- synthesis ---------------------------------------------------------------------------------------
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


# --- template reading ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    environment: dict[str, Any]  # values may still be CloudFormation intrinsics
    timeout: int


def template_functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    out = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        out[logical_id] = FunctionSpec(logical_id, props["Handler"], props.get("Environment", {}).get("Variables", {}),
                                       int(props.get("Timeout", 3)))
    return out


def state_machine_resource(template: dict[str, Any]) -> dict[str, Any]:
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    if len(machines) != 1:
        raise EmulatorError(f"expected one AWS::StepFunctions::StateMachine in the template, found {len(machines)}")
    return machines[0]


def resolve_intrinsics(value: Any, *, region: str, account: str, attributes: dict[tuple[str, str], str],
                       refs: dict[str, str] | None = None) -> Any:
    """Resolve the intrinsics a definition uses: Fn::Join, Fn::Sub (no variables map), Ref, Fn::GetAtt."""
    pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
    known = {**pseudo, **(refs or {})}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg not in known:
                    raise EmulatorError(f"cannot resolve Ref {arg!r}")
                return known[arg]
            if key == "Fn::GetAtt":
                logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                if (logical_id, attr) not in attributes:
                    raise EmulatorError(f"cannot resolve Fn::GetAtt {logical_id}.{attr}")
                return attributes[(logical_id, attr)]
            if key == "Fn::Join":
                return str(arg[0]).join(str(walk(p)) for p in arg[1])
            if key == "Fn::Sub" and isinstance(arg, str):
                text = arg
                for name, val in known.items():
                    text = text.replace("${" + name + "}", val)
                return text
        return {k: walk(v) for k, v in node.items()}

    return walk(value)


def state_machine_definition(template: dict[str, Any], function_arns: dict[str, str], *, region: str, account: str = ACCOUNT) -> str:
    """The template's DefinitionString with each Lambda ARN reference replaced by ``function_arns[logical_id]``."""
    props = state_machine_resource(template)["Properties"]
    raw = props.get("DefinitionString")
    if raw is None:
        raise EmulatorError("the state machine has no DefinitionString")
    attributes = {(logical_id, "Arn"): arn for logical_id, arn in function_arns.items()}
    definition = resolve_intrinsics(raw, region=region, account=account, attributes=attributes)
    json.loads(definition)  # must be JSON now
    return definition


# --- filling moto's gaps and injecting faults ----------------------------------------------------------
def _throttling(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (emulator)"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


@dataclass
class Faults:
    """What the emulated world does. Sequences are consumed one item per call; the last item sticks."""

    ssm_ping: list[str] = field(default_factory=lambda: ["Online"])  # PingStatus per describe_instance_information
    command_status: list[str] = field(default_factory=lambda: ["Success"])  # Status per get_command_invocation
    command_stdout: str | None = None  # the command's stdout (any terminal status); None: the verify lines of a success
    snapshot_state: list[str] | None = None  # None: moto's (completed at once)
    throttle: dict[str, int] = field(default_factory=dict)  # "ssm.put_parameter" -> times (-1 = always)
    # finer throttling: (service.operation, kwargs) -> throttle this call? e.g. only the put of one parameter
    throttle_when: Callable[[str, dict[str, Any]], bool] | None = None
    insufficient_capacity: bool = False
    fsr_enable_error: str | None = None  # error code for enable_fast_snapshot_restores
    anonymous_registries: set[str] = field(default_factory=set)  # registries outside ECR that "allow" anonymous pulls
    # called with (service.operation, kwargs) before each handler call, outside any lock: tests use it to ORDER
    # concurrent executions (block one run's call until another run has started) instead of racing a timer
    on_call: Callable[[str, dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class ApiCall:
    """One AWS call a handler made: which deployed function (None: not inside an in-process invoke)."""

    function: str | None  # the Lambda function's name as deployed in moto (LocalPipeline: the template's logical ID)
    service: str  # boto3 service name, e.g. "stepfunctions"
    operation: str  # boto3 method, e.g. "get_parameter_history"
    api_name: str  # the API operation, e.g. "GetParameterHistory" (the IAM action's name)
    kwargs: dict[str, Any]


# The function whose handler is running in this thread (set by run_handler), for ApiCall.function.
_CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("emulator_current_function", default=None)


class _Sequence:
    def __init__(self) -> None:
        self._positions: dict[str, int] = {}

    def next(self, key: str, items: list[str]) -> str:
        i = self._positions.get(key, 0)
        self._positions[key] = i + 1
        return items[min(i, len(items) - 1)]


class AwsGaps:
    """The handlers' client factory while emulated: moto clients, plus the behaviour moto lacks.

    ``calls`` records every (service.operation, kwargs) the handlers made, for assertions;
    ``api_calls`` records the same calls as ``ApiCall`` with the function that made them (IAM coverage).
    ``fsr`` holds the emulated Fast Snapshot Restore state: {snapshot_id: {az: state}}.
    """

    def __init__(self, region: str = DEFAULT_REGION, *, endpoint_url: str | None = None, faults: Faults | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.faults = faults or Faults()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.api_calls: list[ApiCall] = []
        self.fsr: dict[str, dict[str, str]] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self._sequence = _Sequence()
        self._lock = threading.Lock()

    def boto3_client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def client(self, service: str) -> Any:
        return _GapClient(self, service, self.boto3_client(service))

    @contextlib.contextmanager
    def installed(self) -> Iterator[AwsGaps]:
        """Make the handlers use this factory (and the fake registry probe) for the duration."""
        from lambdas.snapshot_pipeline import clients
        from lambdas.snapshot_pipeline.handlers import resolve_input

        probe, fetch = resolve_input.anonymous_probe, resolve_input.fetch_layer
        clients.set_factory(self.client)
        resolve_input.anonymous_probe = self.anonymous_probe
        resolve_input.fetch_layer = fetch_layer
        try:
            yield self
        finally:
            clients.set_factory(None)
            resolve_input.anonymous_probe, resolve_input.fetch_layer = probe, fetch

    def anonymous_probe(self, registry: str, repository: str, digest: str) -> str | None:
        if registry in self.faults.anonymous_registries:
            return None
        return f"emulator: {registry} is not in Faults.anonymous_registries (no network offline)"

    def calls_to(self, operation: str) -> list[dict[str, Any]]:
        return [kwargs for op, kwargs in self.calls if op == operation]

    # -- per-operation behaviour (name: <service>_<operation>) --
    def _before(self, service: str, operation: str, api_name: str, kwargs: dict[str, Any]) -> None:
        key = f"{service}.{operation}"
        if self.faults.on_call is not None:
            self.faults.on_call(key, kwargs)
        with self._lock:
            self.calls.append((key, kwargs))
            self.api_calls.append(ApiCall(_CURRENT_FUNCTION.get(), service, operation, api_name, kwargs))
            if self.faults.throttle_when is not None and self.faults.throttle_when(key, kwargs):
                raise _throttling(api_name)
            remaining = self.faults.throttle.get(key, 0)
            if remaining:
                if remaining > 0:
                    self.faults.throttle[key] = remaining - 1
                raise _throttling(api_name)

    def ecr_get_download_url_for_layer(self, real: Any, **kwargs: Any) -> Any:
        """moto has no GetDownloadUrlForLayer: answer for blobs moto holds (pushed with the layer-upload API),
        with a URL only ``fetch_layer`` serves (ECR answers with a pre-signed S3 URL)."""
        digest = kwargs["layerDigest"]
        layers = real.batch_check_layer_availability(repositoryName=kwargs["repositoryName"], layerDigests=[digest])["layers"]
        if not layers or digest not in _BLOBS:
            raise _client_error("LayersNotFoundException", f"The image layer {digest} does not exist in the repository", "GetDownloadUrlForLayer")
        return {"downloadUrl": f"{_LAYER_URL}{digest}", "layerDigest": digest}

    def ec2_run_instances(self, real: Any, **kwargs: Any) -> Any:
        if self.faults.insufficient_capacity:
            raise _client_error("InsufficientInstanceCapacity", f"We currently do not have sufficient {kwargs.get('InstanceType')} capacity",
                                "RunInstances")
        return real.run_instances(**kwargs)

    def ec2_describe_snapshots(self, real: Any, **kwargs: Any) -> Any:
        response = real.describe_snapshots(**kwargs)
        if self.faults.snapshot_state is not None and kwargs.get("SnapshotIds"):
            state = self._sequence.next("snapshot", self.faults.snapshot_state)
            for snap in response["Snapshots"]:
                snap["State"] = state
                if state == "error":
                    snap["StateMessage"] = "emulated snapshot failure"
        return response

    def ec2_enable_fast_snapshot_restores(self, real: Any, **kwargs: Any) -> Any:
        if self.faults.fsr_enable_error:
            raise _client_error(self.faults.fsr_enable_error, "emulated Fast Snapshot Restore failure", "EnableFastSnapshotRestores")
        successful = []
        for snapshot_id in kwargs["SourceSnapshotIds"]:
            for az in kwargs["AvailabilityZones"]:
                self.fsr.setdefault(snapshot_id, {})[az] = "enabling"
                successful.append({"SnapshotId": snapshot_id, "AvailabilityZone": az, "State": "enabling"})
        return {"Successful": successful, "Unsuccessful": []}

    def ec2_disable_fast_snapshot_restores(self, real: Any, **kwargs: Any) -> Any:
        successful = []
        for snapshot_id in kwargs["SourceSnapshotIds"]:
            for az in kwargs["AvailabilityZones"]:
                self.fsr.get(snapshot_id, {}).pop(az, None)
                successful.append({"SnapshotId": snapshot_id, "AvailabilityZone": az, "State": "disabling"})
        return {"Successful": successful, "Unsuccessful": []}

    def ec2_describe_fast_snapshot_restores(self, real: Any, **kwargs: Any) -> Any:
        wanted = {v for f in kwargs.get("Filters", []) if f["Name"] == "snapshot-id" for v in f["Values"]}
        items = [{"SnapshotId": s, "AvailabilityZone": az, "State": state}
                 for s, zones in self.fsr.items() if not wanted or s in wanted for az, state in zones.items()]
        return {"FastSnapshotRestores": items}

    def ssm_describe_instance_information(self, real: Any, **kwargs: Any) -> Any:
        ids = [v for f in kwargs.get("Filters", []) if f["Key"] == "InstanceIds" for v in f["Values"]]
        ec2 = self.boto3_client("ec2")
        out = []
        for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []:
            for instance in reservation["Instances"]:
                ping = self._sequence.next(f"ping:{instance['InstanceId']}", self.faults.ssm_ping)
                if instance["State"]["Name"] == "running" and ping != "NotRegistered":
                    out.append({"InstanceId": instance["InstanceId"], "PingStatus": ping, "PlatformType": "Linux"})
        return {"InstanceInformationList": out}

    def ssm_send_command(self, real: Any, **kwargs: Any) -> Any:
        """SendCommand as SSM checks it (moto does not): the document must exist and the parameters must be
        declared by it and match its allowedPattern (the pull document's injection guard)."""
        from lambdas.snapshot_pipeline import pull_script

        try:
            content = json.loads(real.get_document(Name=kwargs["DocumentName"])["Content"])
        except ClientError as exc:
            raise _client_error("InvalidDocument", f"document {kwargs['DocumentName']} does not exist (emulator)", "SendCommand") from exc
        problems = pull_script.parameter_problems(content, kwargs.get("Parameters", {}))
        if problems:
            raise _client_error("InvalidParameters", "; ".join(problems), "SendCommand")
        response = real.send_command(**kwargs)
        images, platforms = pull_script.pulled_images(kwargs["Parameters"])
        self.commands[response["Command"]["CommandId"]] = {"images": images, "platforms": platforms, "parameters": kwargs["Parameters"]}
        return response

    def ssm_get_command_invocation(self, real: Any, **kwargs: Any) -> Any:
        from lambdas.snapshot_pipeline import pull_script
        from settings import names

        response = real.get_command_invocation(**kwargs)
        status = self._sequence.next(f"command:{kwargs['CommandId']}", self.faults.command_status)
        response["Status"] = response["StatusDetails"] = status
        command = self.commands.get(kwargs["CommandId"], {"images": [], "platforms": []})
        if status == "Success":
            if self.faults.command_stdout is not None:
                response["StandardOutputContent"] = self.faults.command_stdout
            else:
                labels = [names.CRI_MANAGED_LABEL, names.CRI_PINNED_LABEL]
                response["StandardOutputContent"] = "\n".join(
                    [f"pulling {i['pinned']}" for i in command["images"]]
                    + [pull_script.verify_line(i["pinned"], i["digest"], command["platforms"], labels) for i in command["images"]]
                )
        elif status not in ("Pending", "InProgress", "Delayed"):
            response["StandardErrorContent"] = f"emulated command outcome {status}"
            if self.faults.command_stdout is not None:  # what a failed script printed (e.g. its COLDSTART-ERROR line)
                response["StandardOutputContent"] = self.faults.command_stdout
        return response


class _GapClient:
    def __init__(self, gaps: AwsGaps, service: str, real: Any) -> None:
        self._gaps, self._service, self._real = gaps, service, real

    def __getattr__(self, operation: str) -> Any:
        attr = getattr(self._real, operation)
        if not callable(attr) or operation in ("get_paginator", "can_paginate", "get_waiter"):
            return attr if operation != "get_paginator" else self._paginator
        override = getattr(self._gaps, f"{self._service}_{operation}", None)
        api_name = self._real.meta.method_to_api_mapping.get(operation, operation)

        def call(**kwargs: Any) -> Any:
            self._gaps._before(self._service, operation, api_name, kwargs)
            return override(self._real, **kwargs) if override else attr(**kwargs)

        return call

    def _paginator(self, operation: str) -> Any:
        """Paginators go through the same hooks (one page: the emulated world is small)."""
        client = self

        class _OnePage:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                yield getattr(client, operation)(**kwargs)

        return _OnePage()


# --- seeding what moto does not ship ----------------------------------------------------------------------
def _ssm_backend(region: str, account: str) -> Any:
    from moto.ssm.models import ssm_backends

    return ssm_backends[account][region]


def seed_public_parameter(name: str, value: str, *, region: str = DEFAULT_REGION, account: str = ACCOUNT) -> None:
    """Write a parameter under the reserved /aws/ prefix straight into moto's SSM backend (PutParameter refuses it)."""
    from moto.ssm.models import Parameter

    params = _ssm_backend(region, account)._parameters
    versions = params[name]
    versions.append(Parameter(account_id=account, name=name, value=value, parameter_type="String", description=None,
                              allowed_pattern=None, keyid=None, last_modified_date=datetime.now(UTC),
                              version=len(versions) + 1, data_type="text"))


def seed_bottlerocket(region: str = DEFAULT_REGION, kubernetes_version: str = "1.36", version: str = DEFAULT_BOTTLEROCKET_VERSION, *,
                      account: str = ACCOUNT, endpoint_url: str | None = None) -> str:
    """Register a stand-in Bottlerocket AMI in moto and publish it under the public Bottlerocket parameters."""
    from settings import names

    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url)
    ami_id = ec2.register_image(Name=f"bottlerocket-aws-k8s-{kubernetes_version}-x86_64-v{version}-{uuid.uuid4().hex[:8]}",
                                Architecture="x86_64", RootDeviceName=names.BUILDER_ROOT_DEVICE)["ImageId"]
    seed_public_parameter(names.bottlerocket_ami_parameter(kubernetes_version), ami_id, region=region, account=account)
    # The real parameter carries a build suffix, e.g. 1.50.0-abcdef12.
    seed_public_parameter(names.bottlerocket_version_parameter(kubernetes_version), f"{version}-{uuid.uuid4().hex[:8]}",
                          region=region, account=account)
    return ami_id


def seed_ecr_image(ecr: Any, repository: str, tag: str, *, content: str | None = None, env: list[str] | None = None) -> str:
    """Create the repository if needed and push an image index (amd64 + arm64) under ``tag``, whose configs
    carry ``env`` (default: the CUDA 13.0 declaration of vLLM's image); returns its digest. Each call
    pushes a new digest unless ``content`` names the same content again."""
    marker = f"COLDSTART_SEED={content or uuid.uuid4()}"
    return seed_ecr_image_with_config(ecr, repository, tag, env=[*(VLLM_IMAGE_ENV if env is None else env), marker])


# Blobs pushed by seed_ecr_image_with_config, content-addressed (so one table serves every world).
_BLOBS: dict[str, bytes] = {}
_LAYER_URL = "https://emulated-ecr-layer.invalid/"


def fetch_layer(url: str) -> bytes:
    """The resolve step's layer fetch while emulated: the blobs ``ecr_get_download_url_for_layer`` points at."""
    if not url.startswith(_LAYER_URL) or url[len(_LAYER_URL):] not in _BLOBS:
        raise EmulatorError(f"no emulated blob behind {url}")
    return _BLOBS[url[len(_LAYER_URL):]]


def _push_blob(ecr: Any, repository: str, data: bytes) -> str:
    upload = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    ecr.upload_layer_part(repositoryName=repository, uploadId=upload, partFirstByte=0, partLastByte=len(data) - 1, layerPartBlob=data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    ecr.complete_layer_upload(repositoryName=repository, uploadId=upload, layerDigests=[digest])
    _BLOBS[digest] = data
    return digest


def seed_ecr_image_with_config(ecr: Any, repository: str, tag: str, *, env: list[str], arches: tuple[str, ...] = ("amd64", "arm64")) -> str:
    """Push an image index whose per-arch configs carry ``env`` (through moto's layer-upload API); its digest."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    entries = []
    for arch in arches:
        config = json.dumps({"architecture": arch, "os": "linux", "config": {"Env": env}, "rootfs": {"type": "layers", "diff_ids": []}})
        config_digest = _push_blob(ecr, repository, config.encode())
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                                          "size": len(config)}, "layers": []})
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageDigest=digest,
                      imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
    digest = "sha256:" + hashlib.sha256(index.encode()).hexdigest()
    ecr.put_image(repositoryName=repository, imageManifest=index, imageDigest=digest, imageTag=tag,
                  imageManifestMediaType="application/vnd.oci.image.index.v1+json")
    return digest


def seed_ecr_from_oci_layout(ecr: Any, repository: str, tag: str, layout: Path) -> str:
    """Push an OCI image layout's index, its manifests and their config blobs to (moto's) ECR under ``tag``
    (layers stay out: nothing in the pipeline reads them); returns the index digest."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    blob = lambda digest: (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()  # noqa: E731
    (top,) = json.loads((layout / "index.json").read_text())["manifests"]
    index = json.loads(blob(top["digest"]))
    for entry in index["manifests"]:
        manifest = blob(entry["digest"])
        _push_blob(ecr, repository, blob(json.loads(manifest)["config"]["digest"]))
        ecr.put_image(repositoryName=repository, imageManifest=manifest.decode(), imageDigest=entry["digest"],
                      imageManifestMediaType=entry["mediaType"])
    ecr.put_image(repositoryName=repository, imageManifest=blob(top["digest"]).decode(), imageDigest=top["digest"], imageTag=tag,
                  imageManifestMediaType=top["mediaType"])
    return str(top["digest"])


def enable_state_machine_execution() -> None:
    """Make moto's Step Functions run definitions (what ``mock_aws(config=...)`` does), e.g. for a ThreadedMotoServer."""
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"]["execute_state_machine"] = True


# --- running handlers in-process ---------------------------------------------------------------------------
class _Context:
    """The parts of the Lambda context object the handlers and Powertools read."""

    def __init__(self, function_name: str, function_arn: str, timeout: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "emulator"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_ENV_LOCK = threading.RLock()  # handlers read os.environ: one in-process invocation at a time


def run_handler(handler: str, event: Any, *, environment: dict[str, str], function_name: str, function_arn: str,
                timeout: int = 60) -> tuple[Any, bool]:
    """Import and call a deployed handler string in this process; returns (payload, errored)."""
    module_name, _, attr = handler.rpartition(".")
    fn = getattr(importlib.import_module(module_name), attr)
    with _ENV_LOCK:
        token = _CURRENT_FUNCTION.set(function_name)
        saved = dict(os.environ)
        os.environ.update({k: str(v) for k, v in environment.items()})
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        try:
            return fn(event, _Context(function_name, function_arn, timeout)), False
        except Exception as exc:  # noqa: BLE001 - reported to the caller as a Lambda function error
            return {"errorType": type(exc).__name__, "errorMessage": str(exc)}, True
        finally:
            os.environ.clear()
            os.environ.update(saved)
            _CURRENT_FUNCTION.reset(token)


@contextlib.contextmanager
def in_process_lambdas() -> Iterator[None]:
    """Patch moto's ``LambdaFunction.invoke(body, request_headers, response_headers)`` to run the handler here."""
    from unittest import mock

    from moto.awslambda.models import LambdaFunction

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        event = json.loads(body) if body else {}
        payload, errored = run_handler(self.handler, event, environment=self.environment_vars, function_name=self.function_name,
                                       function_arn=self.function_arn, timeout=int(self.timeout))
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(payload).encode("utf-8")

    with mock.patch.object(LambdaFunction, "invoke", invoke):
        yield


@contextlib.contextmanager
def fast_retries() -> Iterator[None]:
    """Skip the waits of the definition's Retry intervals in moto's interpreter (the intervals stay in the definition)."""
    from unittest import mock

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _NoSleepTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            return None

    with mock.patch.object(retrier_decl, "time", _NoSleepTime()):
        yield


# --- deploying the template's functions and state machine into moto ------------------------------------------
def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "code runs in-process via coldstart.emulator.in_process_lambdas")
    return buf.getvalue()


@dataclass
class ExecutionResult:
    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None


class LocalPipeline:
    """The pipeline stack's SSM documents, functions and state machine, created in moto from the synthesized template."""

    def __init__(self, template: dict[str, Any], *, region: str = DEFAULT_REGION, account: str = ACCOUNT,
                 endpoint_url: str | None = None, config_overrides: dict[str, Any] | None = None) -> None:
        self.template = template
        self.region = region
        self.account = account
        self.endpoint_url = endpoint_url
        self.config_overrides = config_overrides or {}
        self.state_machine_arn: str | None = None
        self.function_arns: dict[str, str] = {}
        self.builder: dict[str, Any] = {}
        self._counter = itertools.count()

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def _builder_network(self) -> dict[str, Any]:
        ec2 = self._client("ec2")
        iam = self._client("iam")
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
                   for i, z in enumerate(zones)]
        sg = ec2.create_security_group(GroupName=f"builder-{uuid.uuid4().hex[:6]}", Description="builder", VpcId=vpc)["GroupId"]
        name = f"builder-{uuid.uuid4().hex[:6]}"
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
        profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        return {"vpcId": vpc, "subnetIds": subnets, "securityGroupId": sg, "instanceProfileArn": profile}

    def _environment(self, spec: FunctionSpec) -> dict[str, str]:
        from settings import names

        env: dict[str, str] = {}
        for key, value in spec.environment.items():
            if key == names.ENV_PIPELINE_CONFIG:
                value = json.dumps({**json.loads(value), **self.config_overrides})
            elif key == names.ENV_BUILDER_SUBNET_IDS:
                value = ",".join(self.builder["subnetIds"])
            elif key == names.ENV_BUILDER_SECURITY_GROUP_ID:
                value = self.builder["securityGroupId"]
            elif key == names.ENV_BUILDER_INSTANCE_PROFILE_ARN:
                value = self.builder["instanceProfileArn"]
            if not isinstance(value, str):
                raise EmulatorError(f"{spec.logical_id}: env var {key} is an unresolved intrinsic: {value!r}")
            env[key] = value
        return env

    def _documents(self) -> None:
        """Create the template's SSM documents (the pull document) as CloudFormation would."""
        ssm = self._client("ssm")
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] != "AWS::SSM::Document":
                continue
            props = resolve_intrinsics(resource["Properties"], region=self.region, account=self.account, attributes={})
            if not isinstance(props.get("Name"), str):
                raise EmulatorError(f"{logical_id}: the emulator needs a literal document Name, got {props.get('Name')!r}")
            content = props["Content"] if isinstance(props["Content"], str) else json.dumps(props["Content"])
            with contextlib.suppress(ssm.exceptions.DocumentAlreadyExists):
                ssm.create_document(Name=props["Name"], Content=content, DocumentType=props.get("DocumentType", "Command"),
                                    DocumentFormat=props.get("DocumentFormat", "JSON"))

    def deploy(self) -> LocalPipeline:
        iam = self._client("iam")
        lam = self._client("lambda")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                          "Action": "sts:AssumeRole"}]}
        role = iam.create_role(RoleName=f"pipeline-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        self.builder = self._builder_network()
        self._documents()
        code = _dummy_zip()
        for logical_id, spec in template_functions(self.template).items():
            fn = lam.create_function(FunctionName=logical_id[:64], Runtime="python3.12", Role=role, Handler=spec.handler,
                                     Code={"ZipFile": code}, Timeout=spec.timeout, Environment={"Variables": self._environment(spec)})
            self.function_arns[logical_id] = fn["FunctionArn"]
        definition = state_machine_definition(self.template, self.function_arns, region=self.region, account=self.account)
        name = state_machine_resource(self.template)["Properties"].get("StateMachineName") or "snapshot-pipeline"
        sfn = self._client("stepfunctions")
        self.state_machine_arn = sfn.create_state_machine(name=name, definition=definition, roleArn=role, type="STANDARD")["stateMachineArn"]
        return self

    def start(self, execution_input: Any) -> str:
        sfn = self._client("stepfunctions")
        return str(sfn.start_execution(stateMachineArn=self.state_machine_arn, name=f"run-{next(self._counter)}-{uuid.uuid4().hex[:8]}",
                                       input=json.dumps(execution_input))["executionArn"])

    def wait(self, execution_arn: str, *, timeout: float = 120) -> ExecutionResult:
        """Poll until the execution leaves RUNNING (``timeout`` guards a hung emulator, it is not a test assertion)."""
        sfn = self._client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            desc = sfn.describe_execution(executionArn=execution_arn)
            if desc["status"] != "RUNNING":
                output = json.loads(desc["output"]) if desc.get("output") else None
                return ExecutionResult(execution_arn, desc["status"], output, desc.get("error"), desc.get("cause"))
            if time.monotonic() > deadline:
                raise EmulatorError(f"execution {execution_arn} still RUNNING after {timeout} s")
            time.sleep(0.05)

    def run(self, execution_input: Any, *, timeout: float = 120) -> ExecutionResult:
        return self.wait(self.start(execution_input), timeout=timeout)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self._client("stepfunctions")
        return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def states_entered(self, execution_arn: str) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history(execution_arn) if "stateEnteredEventDetails" in e]
