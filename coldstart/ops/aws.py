"""AWS sessions for the CLI: region resolution, lazily created clients and stack outputs.

``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at an emulator; the rehearsal
and the tests use that, so no code path here knows it is talking to moto.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from coldstart.ops.errors import OperatorError
from settings import names

# Adaptive retries ride out throttling during long follows (AWS_MAX_ATTEMPTS still applies); a short connect timeout makes a
# wrong region or an unreachable endpoint fail in seconds instead of minutes.
_BOTO_CONFIG = BotoConfig(retries={"mode": "adaptive"}, connect_timeout=10, read_timeout=60)


@dataclass
class AwsSession:
    """One boto3 session per CLI invocation; clients are created on first use."""

    region: str | None = None
    profile: str | None = None
    _session: boto3.session.Session | None = field(default=None, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def session(self) -> boto3.session.Session:
        if self._session is None:
            self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
            if not self._session.region_name:
                raise OperatorError("no AWS region: pass --region, set AWS_REGION, or set coldstart:region in cdk.json")
        return self._session

    @property
    def region_name(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=_BOTO_CONFIG)
        return self._clients[service]


def stack_output(cfn: Any, stack_name: str, output_key: str) -> str:
    """The value of one CloudFormation output, or an OperatorError saying how to get it."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise OperatorError(
                f"stack {stack_name} not found in {cfn.meta.region_name}; deploy it (`make deploy`) or check --region"
            ) from None
        raise
    for output in stacks[0].get("Outputs", []):
        if output.get("OutputKey") == output_key:
            return str(output["OutputValue"])
    raise OperatorError(f"stack {stack_name} has no output {output_key}; redeploy it with the current app (`make deploy`)")


def resolve_bucket(cfn: Any, bucket: str | None) -> str:
    """--bucket wins; otherwise the storage stack's bucket output."""
    return bucket or stack_output(cfn, names.STORAGE_STACK, names.OUTPUT_BUCKET_NAME)


def resolve_state_machine(cfn: Any, arn: str | None) -> str:
    """--state-machine-arn wins; otherwise the pipeline stack's output."""
    return arn or stack_output(cfn, names.PIPELINE_STACK, names.OUTPUT_STATE_MACHINE_ARN)
