"""The local rehearsal end to end: real template, real handlers, real state machine, real charts, in moto.

Checked independently of what the rehearsal prints: the server records, just before it stops, the
builder instances still running and the published parameter; afterwards its thread must be gone,
the environment as it was, and no rehearsal temp folder left.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from coldstart import rehearsal
from settings import names
from settings.config import load_default_config

pytestmark = [pytest.mark.e2e, pytest.mark.synth]  # runs the real state machine; reads the synthesized app


class RecordingServer(ThreadedMotoServer):
    instances: list[RecordingServer] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.running_at_stop: list[str] | None = None
        self.published_at_stop: str | None = None
        self.pipeline_settings_at_stop: list[dict] = []
        RecordingServer.instances.append(self)

    def stop(self) -> None:
        host, port = self.get_host_and_port()
        url = f"http://{host}:{port}"
        ec2 = boto3.client("ec2", endpoint_url=url, region_name=rehearsal.REGION)
        reservations = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
        self.running_at_stop = [i["InstanceId"] for r in reservations for i in r["Instances"]]
        ssm = boto3.client("ssm", endpoint_url=url, region_name=rehearsal.REGION)
        self.published_at_stop = ssm.get_parameter(Name=load_default_config().snapshotParameterName)["Parameter"]["Value"]
        lam = boto3.client("lambda", endpoint_url=url, region_name=rehearsal.REGION)
        self.pipeline_settings_at_stop = [json.loads(f["Environment"]["Variables"][names.ENV_PIPELINE_CONFIG])
                                          for f in lam.list_functions()["Functions"]]
        super().stop()


def _rehearsal_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{rehearsal.TEMP_PREFIX}*")}


def test_rehearsal_publishes_a_snapshot_that_the_synthesized_nodeclass_references(cli, monkeypatch, synthesized_app):
    """As `make demo` runs it: on the whole app's synthesized pipeline template (`--template`; the rehearsal's own
    synth runs to completion in tests/coldstart/test_bad_input.py's Ctrl-C case, which interrupts the run after it)."""
    monkeypatch.setattr("moto.server.ThreadedMotoServer", RecordingServer)
    RecordingServer.instances.clear()
    env_before, dirs_before = dict(os.environ), _rehearsal_dirs()

    result = cli("rehearse", "--template", str(synthesized_app.outdir / "VllmColdstartPipeline.template.json"))

    assert result.exit_code == 0, result.output
    printed_id = result.stdout.strip().splitlines()[-1].removeprefix("snapshot: ")
    assert "next: deploy for real" in result.stdout  # the operator is told what comes after the rehearsal
    assert "pipeline stack: the given synthesized template" in result.stdout
    (server,) = RecordingServer.instances
    # the given template's functions run with the rehearsal's short polls, the rest of their settings as synthesized
    assert server.pipeline_settings_at_stop and all(s | rehearsal.FAST == s for s in server.pipeline_settings_at_stop)
    assert {s["snapshotParameterName"] for s in server.pipeline_settings_at_stop} == {load_default_config().snapshotParameterName}
    assert server.published_at_stop == printed_id  # what Parameter Store held is what was printed
    nodeclass = result.stdout.split("EC2NodeClass (synthesized from the emulated Parameter Store):")[1]
    assert f"snapshotID: {printed_id}" in nodeclass
    assert "✓ Publish" in result.stdout and "✓ LaunchBuilder" in result.stdout  # the real state machine's states
    assert server.running_at_stop == []  # the pipeline terminated its builder
    assert not server._thread.is_alive()
    assert dict(os.environ) == env_before
    assert _rehearsal_dirs() == dirs_before

