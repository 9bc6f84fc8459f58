"""Deploying the template's SSM documents, functions and state machine into moto, and running executions."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import time
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3

from coldstart.emulator.common import ACCOUNT, DEFAULT_REGION, EmulatorError
from coldstart.emulator.template import (
    FunctionSpec,
    resolve_intrinsics,
    state_machine_definition,
    state_machine_resource,
    template_functions,
)


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
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:  # one per service: building a client costs far more than a call
            self._clients[service] = boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)
        return self._clients[service]

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
            time.sleep(0.1)  # each look is an API call competing with the execution's thread for the interpreter

    def run(self, execution_input: Any, *, timeout: float = 120) -> ExecutionResult:
        return self.wait(self.start(execution_input), timeout=timeout)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self._client("stepfunctions")
        return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def states_entered(self, execution_arn: str) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history(execution_arn) if "stateEnteredEventDetails" in e]
