"""Bad input fails at synth, before any chart exists, with the field named."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from chart_helpers import published_fixture, synth

from k8s_charts.inputs import ChartInputError
from settings.config import load_default_config

CFG = load_default_config()


@pytest.mark.parametrize("snapshot_id", ["snap-123", "snap-0123456789ABCDEF0", "vol-0123456789abcdef0", "snap-0123456789abcdef01234", ""])
def test_malformed_snapshot_id(snapshot_id) -> None:
    with pytest.raises(ChartInputError, match=r"snapshot ID \(/vllm-coldstart/snapshot-id\): invalid value .*snap-"):
        synth(CFG, published_fixture(snapshot_id=snapshot_id))


@pytest.mark.parametrize("rate", [99, 301, 0, -5])
def test_volume_initialization_rate_out_of_range(rate) -> None:
    with pytest.raises(ChartInputError, match=rf"coldstart:volumeInitializationRate: invalid value {rate}; .*100 to 300"):
        synth(replace(CFG, volumeInitializationRate=rate), published_fixture())


@pytest.mark.parametrize("uri", ["https://bucket.s3.amazonaws.com/models/x/", "/models/x/", "s3://bucket/models/x",
                                 "s3://Bad_Bucket/models/x/", "s3://bucket/"])
def test_model_uri_not_s3(uri) -> None:
    with pytest.raises(ChartInputError, match=r"--model-uri: invalid value .*s3://"):
        synth(CFG, None, model_uri=uri)


def test_bucket_given_as_a_uri_is_rejected() -> None:
    with pytest.raises(ChartInputError, match=r"--model-bucket: invalid value 's3://my-bucket'"):
        synth(CFG, None, model_bucket="s3://my-bucket")


def test_model_uri_override_is_used_verbatim() -> None:
    manifests, _ = synth(CFG, None, model_uri="s3://other-bucket/models/llama/")
    deployment = next(o for o in manifests["vllm"] if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][0] == "s3://other-bucket/models/llama/"


def test_unknown_model_bucket_names_the_ways_to_provide_it() -> None:
    with pytest.raises(ChartInputError, match=r"model bucket: not known; pass --model-bucket"):
        synth(CFG, None, model_bucket=None)


@pytest.mark.parametrize("family", ["g5.xlarge", "G5", "g*", "gpu", "g5 g6", ""])
def test_unknown_instance_family_syntax(family) -> None:
    with pytest.raises(ChartInputError, match=re.escape(f"coldstart:gpuInstanceFamilies: invalid value {family!r}")):
        synth(replace(CFG, gpuInstanceFamilies=("g6", family)), None)


def test_data_volume_smaller_than_the_snapshot_from_metadata() -> None:
    with pytest.raises(ChartInputError, match=r"coldstart:nodeDataVolumeSizeGiB: invalid value 100; .*snapshot of 200 GiB "
                                              r"\(volumeSizeGiB in /vllm-coldstart/snapshot-id/metadata"):
        synth(CFG, published_fixture(volume_size_gib=200))


def test_data_volume_smaller_than_the_configured_build_size() -> None:
    # the metadata does not carry a size: the pipeline built with coldstart:dataVolumeSizeGiB
    with pytest.raises(ChartInputError, match=r"coldstart:nodeDataVolumeSizeGiB: invalid value 60; .*snapshot of 80 GiB "
                                              r"\(built with coldstart:dataVolumeSizeGiB\)"):
        synth(replace(CFG, nodeDataVolumeSizeGiB=60), published_fixture())


def test_node_role_must_be_a_role_name() -> None:
    with pytest.raises(ChartInputError, match=r"Karpenter node role name: invalid value 'arn:aws:iam::123456789012:role/x'"):
        synth(CFG, None, node_role_name="arn:aws:iam::123456789012:role/x")


def test_identity_choice_is_explicit() -> None:
    with pytest.raises(ChartInputError, match=r"vLLM role ARN: required with identity 'irsa'"):
        synth(CFG, None, identity="irsa")
    with pytest.raises(ChartInputError, match=r"vLLM role ARN: invalid value .*identity 'pod-identity'"):
        synth(CFG, None, vllm_role_arn="arn:aws:iam::123456789012:role/vllm")
    with pytest.raises(ChartInputError, match=r"vLLM role ARN: invalid value 'vllm-role'"):
        synth(CFG, None, identity="irsa", vllm_role_arn="vllm-role")
    with pytest.raises(ChartInputError, match=r"identity: invalid value 'kiam'"):
        synth(CFG, None, identity="kiam")


def test_cdk_tokens_pass_through_unchecked() -> None:
    # The cluster stack passes unresolved references (resolved by CloudFormation at deploy time).
    manifests, _ = synth(CFG, None, node_role_name="${Token[TOKEN.123]}", model_bucket="${Token[TOKEN.456]}")
    node_class = next(o for o in manifests["gpu-nodes"] if o["kind"] == "EC2NodeClass")
    assert node_class["spec"]["role"] == "${Token[TOKEN.123]}"
