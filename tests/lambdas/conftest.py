"""Pipeline fixtures: the PipelineStack template is synthesized ONCE per session (with cdk-nag on);
each e2e test gets a fresh moto world with that template's functions and state machine deployed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from coldstart import emulator
from lambdas.snapshot_pipeline.core.defaults import PipelineDefaults
from settings import names
from settings.config import AppConfig, load_default_config
from stacks.pipeline_stack import pipeline_defaults
from tests.conftest import SynthesizedApp

REGION = "us-west-2"
ACCOUNT = emulator.ACCOUNT
PREVIOUS_SNAPSHOT = "snap-0123456789abcdef0"

# Small poll counts so timeouts are reached in a few polls (the waits themselves run on a virtual clock);
# the definition is otherwise the deployed one.
DEFAULTS = load_default_config()
VLLM_TAG, K8S_VERSION = DEFAULTS.vllmImageTag, DEFAULTS.kubernetesVersion  # what the default config builds
BOTTLEROCKET = emulator.DEFAULT_BOTTLEROCKET_VERSION  # what the seeded public parameters announce

TEST_CONFIG_OVERRIDES: dict[str, Any] = {"pollIntervalSeconds": 1, "maxPolls": 3, "triggerDebounceSeconds": 0, "pullTimeoutSeconds": 60}


@pytest.fixture(scope="session")
def pipeline_config() -> AppConfig:
    return load_default_config(**TEST_CONFIG_OVERRIDES)


@pytest.fixture(scope="session")
def pipeline_template(synthesized_app: SynthesizedApp) -> dict[str, Any]:
    """The whole app's PipelineStack template: the session's one synth (cdk-nag AwsSolutions on), as deployed.
    Its functions carry cdk.json's settings; the worlds deploy it with TEST_CONFIG_OVERRIDES in their environment."""
    return synthesized_app.template(names.PIPELINE_STACK)


@pytest.fixture(scope="session")
def _pipeline_definition_text(pipeline_template: dict[str, Any]) -> str:
    arns = {logical_id: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id[:64]}" for logical_id in emulator.template_functions(pipeline_template)}
    return emulator.state_machine_definition(pipeline_template, arns, region=REGION)


@pytest.fixture
def pipeline_definition(_pipeline_definition_text: str) -> dict[str, Any]:
    """The state machine definition of the synthesized template, parsed: the one way tests read it. Its intrinsics
    are resolved by the emulator, as for the e2e runs (each Lambda ARN names the function's logical ID);
    a fresh copy per test."""
    return dict(json.loads(_pipeline_definition_text))


@pytest.fixture
def defaults(pipeline_config: AppConfig) -> PipelineDefaults:
    return pipeline_defaults(pipeline_config, "VllmColdstartPipeline")


class FakeContext:
    """The Lambda context attributes Powertools and the handlers read."""

    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class World:
    gaps: emulator.AwsGaps
    faults: emulator.Faults
    digest: str
    ec2: Any
    ssm: Any
    ecr: Any
    pipeline: emulator.LocalPipeline | None = None

    def deploy(self, template: dict[str, Any], **config_overrides: Any) -> emulator.LocalPipeline:
        self.pipeline = emulator.LocalPipeline(template, region=REGION, config_overrides={**TEST_CONFIG_OVERRIDES, **config_overrides}).deploy()
        return self.pipeline

    def start_back_to_back(self, pipeline: emulator.LocalPipeline, execution_input: Any) -> tuple[str, str]:
        """Start two executions with the same input, the second strictly newer, ordered rather than raced:
        every gate's look at the running executions waits until BOTH have started, so the older run's
        gate always sees the newer one however slow the machine (no debounce timer involved). Which gate
        runs first is still open (handlers run one at a time), so inputs must make the newer run wait for
        the older (nothing published yet, or ``force``) rather than end on its own."""
        both_started = threading.Event()

        def hold_gate(key: str, kwargs: dict[str, Any]) -> None:
            if key == "stepfunctions.list_executions" and not both_started.wait(timeout=60):
                raise AssertionError("the second execution never started")

        self.faults.on_call = hold_gate
        try:
            older = pipeline.start(execution_input)
            newer = pipeline.start(execution_input)
        finally:
            both_started.set()
        return older, newer

    # --- observations ---
    def live_instances(self) -> list[dict[str, Any]]:
        return [i for r in self.ec2.describe_instances()["Reservations"] for i in r["Instances"] if i["State"]["Name"] != "terminated"]

    def volumes(self) -> list[dict[str, Any]]:
        return self.ec2.describe_volumes()["Volumes"]

    def snapshots(self) -> list[dict[str, Any]]:
        """Snapshots the pipeline made (filtered by its tag: anything else in the account is not the pipeline's)."""
        filters = [{"Name": f"tag:{names.TAG_MANAGED_BY}", "Values": [names.MANAGED_BY_VALUE]}]
        return self.ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]

    def parameter(self, name: str = names.DEFAULT_SNAPSHOT_PARAMETER) -> str | None:
        try:
            return str(self.ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except self.ssm.exceptions.ParameterNotFound:
            return None

    def publish_previous(self, snapshot_id: str = PREVIOUS_SNAPSHOT) -> None:
        """A snapshot ID published by an earlier (pretend) run."""
        self.ssm.put_parameter(Name=names.DEFAULT_SNAPSHOT_PARAMETER, Value=snapshot_id, Type="String", Overwrite=True)


@pytest.fixture
def world() -> Iterator[World]:
    """moto (with Step Functions execution), handlers in-process, moto's gaps filled, Bottlerocket and vLLM image seeded;
    the definition's Retry intervals and Wait states take no real time (``emulator.virtual_clock``)."""
    with (mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), emulator.in_process_lambdas(), emulator.fast_retries(),
          emulator.virtual_clock()):
        faults = emulator.Faults()
        gaps = emulator.AwsGaps(region=REGION, faults=faults)
        with gaps.installed():
            emulator.seed_bottlerocket(REGION, K8S_VERSION)
            ecr = boto3.client("ecr", region_name=REGION)
            digest = emulator.seed_ecr_image(ecr, DEFAULTS.vllmRepository, VLLM_TAG)
            yield World(gaps=gaps, faults=faults, digest=digest, ec2=boto3.client("ec2", region_name=REGION),
                        ssm=boto3.client("ssm", region_name=REGION), ecr=ecr)


def pytest_configure(config: pytest.Config) -> None:
    # Powertools warns when a step emitted no metric in an invocation; that is expected for most steps.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")
