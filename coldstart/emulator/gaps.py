"""Filling moto's gaps and injecting faults: the handlers' boto3 clients, wrapped (``AwsGaps``)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from coldstart.emulator.blobs import BLOBS, LAYER_URL, fetch_layer
from coldstart.emulator.common import DEFAULT_REGION
from coldstart.emulator.in_process import CURRENT_FUNCTION


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
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def boto3_client(self, service: str) -> Any:
        """One boto3 client per service for this world (building a client costs far more than a call; clients are thread-safe)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)
            return self._clients[service]

    def client(self, service: str) -> Any:
        return _GapClient(self, service, self.boto3_client(service))

    @contextlib.contextmanager
    def installed(self) -> Iterator[AwsGaps]:
        """Make the handlers use this factory (and the fake registry probe) for the duration."""
        from lambdas.snapshot_pipeline.core import clients
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

    def anonymous_probe(self, registry: str, repository: str, digest: str, http: Any = None) -> str | None:
        """Stands in for ``registry_probe.anonymous_pull_problem`` (same signature; ``http`` unused: nothing goes online)."""
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
            self.api_calls.append(ApiCall(CURRENT_FUNCTION.get(), service, operation, api_name, kwargs))
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
        if not layers or digest not in BLOBS:
            raise _client_error("LayersNotFoundException", f"The image layer {digest} does not exist in the repository", "GetDownloadUrlForLayer")
        return {"downloadUrl": f"{LAYER_URL}{digest}", "layerDigest": digest}

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
        from lambdas.snapshot_pipeline.steps import pull_script

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
        from lambdas.snapshot_pipeline.steps import pull_script
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
