"""Fixtures for the operator CLI tests: moto, a CliRunner, tiny models and pipeline snapshots."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from coldstart.cli import app
from settings import names

REGION = "us-west-2"
PARAM = names.DEFAULT_SNAPSHOT_PARAMETER


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """Invoke the CLI in-process (so moto's patching applies); returns click's Result."""
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")  # cluster checks skip unless a test fakes kubectl
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=True)

    return invoke


# --- models -------------------------------------------------------------------------------------


def safetensors_bytes(tensors: dict[str, int]) -> bytes:
    """A valid safetensors file: tensor name -> number of float32 values."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, count in tensors.items():
        header[name] = {"dtype": "F32", "shape": [count], "data_offsets": [offset, offset + 4 * count]}
        offset += 4 * count
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # writers pad the header to 8 bytes
    return struct.pack("<Q", len(raw)) + raw + bytes(range(256)) * (offset // 256) + bytes(offset % 256)


def make_model(root: Path, shards: int = 2, values: int = 64) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    weight_map = {}
    for i in range(1, shards + 1):
        name = f"model-{i:05d}-of-{shards:05d}.safetensors"
        (root / name).write_bytes(safetensors_bytes({f"layer{i}.weight": values}))
        weight_map[f"layer{i}.weight"] = name
    (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (root / "config.json").write_text(json.dumps({"architectures": ["MistralForCausalLM"], "model_type": "mistral"}))
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (root / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 4096}))
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


# --- CloudFormation outputs the CLI reads -------------------------------------------------------


def create_stack_with_outputs(stack_name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=stack_name, TemplateBody=json.dumps(template))


# --- pipeline snapshots and parameters ---------------------------------------------------------


COMPATIBLE_CUDA = [{"status": "compatible", "required": "13.0", "driver": "R580", "driverCuda": "13.0"}]


def pipeline_snapshot(image: str = "111122223333.dkr.ecr.us-west-2.amazonaws.com/vllm/vllm-openai:v0.34.0", version: str = "1.66.0") -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=80, VolumeType="gp3")["VolumeId"]
    tags = [
        {"Key": names.TAG_MANAGED_BY, "Value": names.MANAGED_BY_VALUE},
        {"Key": names.TAG_ROLE, "Value": names.ROLE_SNAPSHOT},
        {"Key": names.TAG_IMAGES, "Value": image},
        {"Key": names.TAG_BOTTLEROCKET_VERSION, "Value": version},
        {"Key": names.TAG_KUBERNETES_VERSION, "Value": "1.36"},
    ]
    return ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])["SnapshotId"]


def metadata_for(snapshot_id: str, version: str = "1.66.0", cuda: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "snapshotId": snapshot_id,
        "bottlerocketVersion": version,
        "kubernetesVersion": "1.36",
        "images": [{"reference": "111122223333.dkr.ecr.us-west-2.amazonaws.com/vllm/vllm-openai:v0.34.0",
                    "digest": "sha256:" + "a" * 64,
                    "pinned": "111122223333.dkr.ecr.us-west-2.amazonaws.com/vllm/vllm-openai@sha256:" + "a" * 64}],
        "platforms": ["amd64"],
        "cuda": COMPATIBLE_CUDA if cuda is None else cuda,
        "executionArn": f"arn:aws:states:{REGION}:123456789012:execution:pipeline:{snapshot_id}",
        "createdAt": "2026-01-01T00:00:00Z",
    }


def publish(snapshot_id: str, parameter: str = PARAM, version: str = "1.66.0", cuda: list[dict[str, Any]] | None = None) -> None:
    """What the pipeline's publish step does: metadata, then the ID."""
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=names.metadata_parameter_name(parameter), Value=json.dumps(metadata_for(snapshot_id, version, cuda)),
                      Type="String", Overwrite=True)
    ssm.put_parameter(Name=parameter, Value=snapshot_id, Type="String", Overwrite=True)


def parameter_value(name: str = PARAM) -> str:
    return boto3.client("ssm", region_name=REGION).get_parameter(Name=name)["Parameter"]["Value"]
