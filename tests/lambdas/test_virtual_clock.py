"""The emulator's virtual clock: moto's Wait states take no real time, and executions meet in wait order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from coldstart import emulator

REGION = "us-west-2"
ROLE = f"arn:aws:iam::{emulator.ACCOUNT}:role/clock-test"


def _machine(sfn: Any, name: str, states: dict[str, Any], start: str) -> str:
    definition = json.dumps({"StartAt": start, "States": states})
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)["stateMachineArn"])


def _finish(sfn: Any, arns: list[str]) -> list[dict[str, Any]]:
    """Describe each execution once it has left RUNNING (the guard is the emulator's, not an assertion)."""
    pipeline = emulator.LocalPipeline({"Resources": {}}, region=REGION)
    return [sfn.describe_execution(executionArn=pipeline.wait(arn).arn) for arn in arns]


@pytest.fixture
def sfn() -> Iterator[tuple[Any, emulator.VirtualClock]]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), emulator.virtual_clock() as clock:
        yield boto3.client("stepfunctions", region_name=REGION), clock


def test_an_hour_long_wait_passes_on_the_virtual_clock(sfn: tuple[Any, emulator.VirtualClock]) -> None:
    client, clock = sfn
    arn = _machine(client, "hour", {"Hour": {"Type": "Wait", "Seconds": 3600, "Next": "Done"}, "Done": {"Type": "Succeed"}}, "Hour")
    (done,) = _finish(client, [client.start_execution(stateMachineArn=arn, name="hour", input="{}")["executionArn"]])
    assert done["status"] == "SUCCEEDED"
    assert clock.waits == [3600] and clock.now == 3600


def test_the_shorter_wait_ends_first_whatever_the_start_order(sfn: tuple[Any, emulator.VirtualClock]) -> None:
    """Two executions waiting 30 s and 10 s side by side: virtual time jumps to each wake-up in turn, so the
    10 s one stops first (its stop date is earlier) though it started second."""
    client, clock = sfn
    states = {"Nap": {"Type": "Wait", "SecondsPath": "$.seconds", "Next": "Done"}, "Done": {"Type": "Succeed"}}
    arn = _machine(client, "naps", states, "Nap")
    with clock.held():  # both are started before time may move
        long_run = client.start_execution(stateMachineArn=arn, name="long", input=json.dumps({"seconds": 30}))["executionArn"]
        short_run = client.start_execution(stateMachineArn=arn, name="short", input=json.dumps({"seconds": 10}))["executionArn"]
    long_done, short_done = _finish(client, [long_run, short_run])
    assert long_done["status"] == short_done["status"] == "SUCCEEDED"
    assert sorted(clock.waits) == [10, 30] and clock.now == 30
    assert short_done["stopDate"] <= long_done["stopDate"]
