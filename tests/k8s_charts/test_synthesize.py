"""``synthesize``: the typed entry point every standalone synth calls, and ``read_snapshot_or_warn``,
the one reading of the published snapshot that every synth (and app.py) shares."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
import yaml
from chart_helpers import METADATA, SNAPSHOT_ID
from moto import mock_aws

from k8s_charts.inputs import ChartInputError
from k8s_charts.snapshot_source import read_snapshot_or_warn
from k8s_charts.synthesize import OFFLINE, synthesize
from settings import names
from settings.config import REPO_ROOT, load_default_config

PARAM = names.DEFAULT_SNAPSHOT_PARAMETER
OTHER_ID = "snap-0ccccccccccccccc3"


def objects(path: Path) -> dict[str, dict]:
    return {o["kind"]: o for o in yaml.safe_load_all(path.read_text())}


def test_the_typed_config_reaches_the_manifests_without_a_round_trip_through_flags(tmp_path: Path) -> None:
    # Given a config changed in code (dataclasses.replace: no -c string could express how it was made)
    config = replace(load_default_config(), gpuLimit=7, vllmNamespace="inference")
    # When it is synthesized offline with a pinned snapshot
    result = synthesize(config, outdir=tmp_path, aws=OFFLINE, snapshot_id=SNAPSHOT_ID, model_bucket="my-models",
                        region="us-west-2", account="123456789012")
    # Then the files hold exactly that config, and the result says what was written
    assert sorted(p.name for p in result.files) == ["chat.k8s.yaml", "gpu-nodes.k8s.yaml", "vllm.k8s.yaml"]
    assert all(p.parent == tmp_path and p.is_file() for p in result.files)
    nodes, vllm = objects(tmp_path / "gpu-nodes.k8s.yaml"), objects(tmp_path / "vllm.k8s.yaml")
    assert nodes["NodePool"]["spec"]["limits"] == {"nvidia.com/gpu": 7}
    assert vllm["Deployment"]["metadata"]["namespace"] == "inference"
    assert objects(tmp_path / "chat.k8s.yaml")["Deployment"]["metadata"]["namespace"] == "inference"
    assert result.snapshot_id == SNAPSHOT_ID
    assert result.summary.startswith(f"snapshot: {SNAPSHOT_ID}; AMI: bottlerocket@")
    assert any(n.startswith("--offline: using --snapshot-id without metadata") for n in result.notices)


def test_nothing_published_is_one_loud_banner_in_the_messages(tmp_path: Path) -> None:
    result = synthesize(load_default_config(), outdir=tmp_path, aws=OFFLINE, model_bucket="my-models", region="us-west-2")
    assert result.snapshot_id is None and result.summary.startswith("snapshot: NONE (empty data volume)")
    messages = result.messages()
    assert messages[0] == "!" * 100 and "!" * 100 in messages[1:]  # the banner opens and closes
    assert any(m.startswith("!! WARNING: no image-cache snapshot is published yet") for m in messages)


def test_bad_input_raises_naming_the_field_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ChartInputError, match=r"^--snapshot-id \(or COLDSTART_SNAPSHOT_ID\): invalid value 'snap-12'"):
        synthesize(load_default_config(), outdir=tmp_path / "dist", aws=OFFLINE, snapshot_id="snap-12", region="us-west-2")
    assert not (tmp_path / "dist").exists()


def _publish(ssm) -> None:  # type: ignore[no-untyped-def]
    import json

    ssm.put_parameter(Name=f"{PARAM}/metadata", Value=json.dumps(METADATA), Type="String")
    ssm.put_parameter(Name=PARAM, Value=SNAPSHOT_ID, Type="String")


def test_reading_the_published_snapshot_carries_no_warning() -> None:
    with mock_aws():
        session = boto3.Session(region_name="us-west-2")
        _publish(session.client("ssm"))
        reading = read_snapshot_or_warn(session, PARAM, region="us-west-2", snapshot_id=None, consequence="unused")
    assert reading.aws_reachable and reading.warning is None
    assert reading.published is not None and reading.published.snapshot_id == SNAPSHOT_ID
    assert reading.published.has_metadata


def test_unreachable_parameter_store_is_one_warning_and_the_pin_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: connection refused
    reading = read_snapshot_or_warn(boto3.Session(region_name="us-west-2"), PARAM, region="us-west-2", snapshot_id=OTHER_ID,
                                    consequence="the cluster stack deploys the manifests without a snapshot")
    assert not reading.aws_reachable
    assert reading.warning is not None
    assert reading.warning.startswith(f"WARNING: cannot read {PARAM} from Parameter Store (EndpointConnectionError")
    assert reading.warning.endswith("; the cluster stack deploys the manifests without a snapshot")
    assert "\n" not in reading.warning
    assert reading.published is not None and reading.published.snapshot_id == OTHER_ID
    assert not reading.published.has_metadata and "Parameter Store unreachable" in reading.published.notes[0]


def test_a_synth_writes_nothing_but_its_own_messages_to_stderr(tmp_path: Path) -> None:
    """No stray output of jsii's Node child: no `program.js:1:NNNN` stack lines, no raw `b'...'` lines
    (its Node end-of-life banner), even when the caller did not silence that banner itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_")}
    run = subprocess.run([sys.executable, "-m", "k8s_charts.synth", "--offline", "--model-bucket", "my-models",
                          "--region", "us-west-2", "--outdir", str(tmp_path)],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert [line for line in lines if "program.js" in line] == []
    assert [line for line in lines if line.startswith(("b'", 'b"'))] == []
    assert "end-of-life" not in run.stderr
