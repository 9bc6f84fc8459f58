"""``python -m k8s_charts.synth``: reads Parameter Store and stack outputs (moto), writes dist/*.k8s.yaml,
and degrades loudly but without a crash when nothing is published or AWS is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest
import yaml
from chart_helpers import METADATA, SNAPSHOT_ID
from moto import mock_aws

from k8s_charts.synth import main
from settings import names
from settings.config import REPO_ROOT

PARAM = names.DEFAULT_SNAPSHOT_PARAMETER
OTHER_ID = "snap-0ccccccccccccccc3"


def load(outdir, chart: str) -> dict[str, dict]:
    return {o["kind"]: o for o in yaml.safe_load_all((outdir / f"{chart}.k8s.yaml").read_text())}


def data_volume(objects: dict[str, dict]) -> dict:
    return next(m["ebs"] for m in objects["EC2NodeClass"]["spec"]["blockDeviceMappings"] if m["deviceName"] == "/dev/xvdb")


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.Session(region_name="us-west-2")


def publish(session, snapshot_id: str = SNAPSHOT_ID) -> None:
    import json

    ssm = session.client("ssm")
    ssm.put_parameter(Name=f"{PARAM}/metadata", Value=json.dumps({**METADATA, "snapshotId": snapshot_id}), Type="String",
                      Overwrite=True)
    ssm.put_parameter(Name=PARAM, Value=snapshot_id, Type="String", Overwrite=True)


def deploy_outputs(session) -> None:
    """A stand-in for the deployed stacks: only their outputs matter to the synth."""
    import json

    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cfn = session.client("cloudformation")
    cfn.create_stack(StackName=names.CLUSTER_STACK, TemplateBody=json.dumps({**template, "Outputs": {
        names.OUTPUT_KARPENTER_NODE_ROLE: {"Value": "VllmColdstartCluster-KarpenterNodeRole-ABC"},
        names.OUTPUT_VLLM_ROLE_ARN: {"Value": "arn:aws:iam::123456789012:role/VllmColdstartCluster-ModelRead-XYZ"},
    }}))
    cfn.create_stack(StackName=names.STORAGE_STACK, TemplateBody=json.dumps({**template, "Outputs": {
        names.OUTPUT_BUCKET_NAME: {"Value": "vllmcoldstartstorage-modelbucket-123"}}}))


def test_published_snapshot_and_stack_outputs_end_up_in_the_manifests(aws, tmp_path, capsys) -> None:
    publish(aws)
    deploy_outputs(aws)
    assert main(["--outdir", str(tmp_path)], session=aws) == 0
    nodes, vllm = load(tmp_path, "gpu-nodes"), load(tmp_path, "vllm")
    assert data_volume(nodes)["snapshotID"] == SNAPSHOT_ID
    assert nodes["EC2NodeClass"]["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.66.0"}]
    assert nodes["EC2NodeClass"]["spec"]["role"] == "VllmColdstartCluster-KarpenterNodeRole-ABC"
    container = vllm["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "s3://vllmcoldstartstorage-modelbucket-123/models/mistral-7b-instruct-v0.2-awq/"
    assert container["image"] == METADATA["images"][0]["pinned"]
    assert "annotations" not in vllm["ServiceAccount"]["metadata"]  # Pod Identity unless asked for IRSA
    out = capsys.readouterr()
    assert "WARNING" not in out.err
    assert f"snapshot: {SNAPSHOT_ID}" in out.out


def test_irsa_takes_the_role_arn_from_the_stack_output(aws, tmp_path) -> None:
    deploy_outputs(aws)
    assert main(["--outdir", str(tmp_path), "--identity", "irsa"], session=aws) == 0
    annotations = load(tmp_path, "vllm")["ServiceAccount"]["metadata"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/VllmColdstartCluster-ModelRead-XYZ"}


def test_nothing_published_synthesizes_without_snapshot_and_says_so(aws, tmp_path, capsys) -> None:
    assert main(["--outdir", str(tmp_path), "--model-bucket", "my-models"], session=aws) == 0
    nodes = load(tmp_path, "gpu-nodes")
    assert "snapshotID" not in data_volume(nodes)
    assert nodes["EC2NodeClass"]["spec"]["role"] == "KarpenterNodeRole-vllm-coldstart"  # offline default
    err = capsys.readouterr().err
    assert "WARNING: no image-cache snapshot is published yet" in err
    assert "Traceback" not in err


def test_flag_overrides_the_published_snapshot(aws, tmp_path) -> None:
    publish(aws, OTHER_ID)
    publish(aws, SNAPSHOT_ID)
    assert main(["--outdir", str(tmp_path), "--model-bucket", "my-models", "--snapshot-id", OTHER_ID], session=aws) == 0
    assert data_volume(load(tmp_path, "gpu-nodes"))["snapshotID"] == OTHER_ID


def test_environment_variable_overrides_the_published_snapshot(aws, tmp_path, monkeypatch) -> None:
    publish(aws, SNAPSHOT_ID)
    monkeypatch.setenv("COLDSTART_SNAPSHOT_ID", OTHER_ID)
    assert main(["--outdir", str(tmp_path), "--model-bucket", "my-models"], session=aws) == 0
    assert data_volume(load(tmp_path, "gpu-nodes"))["snapshotID"] == OTHER_ID


def test_malformed_snapshot_id_flag_exits_2_naming_the_flag(tmp_path, capsys) -> None:
    assert main(["--outdir", str(tmp_path), "--offline", "--snapshot-id", "snap-12"]) == 2
    assert "--snapshot-id (or COLDSTART_SNAPSHOT_ID): invalid value 'snap-12'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_config_override_exits_2_naming_the_key(tmp_path, capsys) -> None:
    assert main(["--outdir", str(tmp_path), "--offline", "-c", "volumeInitializationRate=500"]) == 2
    assert "coldstart:volumeInitializationRate: invalid value 500" in capsys.readouterr().err


def test_unreachable_endpoint_falls_back_with_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: connection refused
    code = main(["--outdir", str(tmp_path), "--model-bucket", "my-models", "--region", "us-west-2"], session=boto3.Session())
    assert code == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "cannot read /vllm-coldstart/snapshot-id" in line]
    assert len(warning) == 1 and "EndpointConnectionError" in warning[0]
    assert "Traceback" not in err
    assert "snapshotID" not in data_volume(load(tmp_path, "gpu-nodes"))


def test_module_runs_without_credentials_and_without_a_stack_trace(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-west-2")
    run = subprocess.run([sys.executable, "-m", "k8s_charts.synth", "--outdir", str(tmp_path / "dist"), "--model-bucket", "my-models"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "NoCredentialsError" in run.stderr
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["gpu-nodes.k8s.yaml", "vllm.k8s.yaml"]
