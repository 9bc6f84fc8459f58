"""read_published against Parameter Store (moto): published, missing, overridden, stale metadata."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from chart_helpers import METADATA, SNAPSHOT_ID
from moto import mock_aws

from k8s_charts.inputs import ChartInputError
from k8s_charts.published import read_published

PARAM = "/vllm-coldstart/snapshot-id"
META = f"{PARAM}/metadata"
OLD_ID = "snap-0aaaaaaaaaaaaaaa1"
NEW_ID = "snap-0bbbbbbbbbbbbbbb2"


@pytest.fixture
def ssm():
    with mock_aws():
        yield boto3.client("ssm", region_name="us-west-2")


def metadata(snapshot_id: str, version: str = "1.50.0", **extra) -> str:
    data = copy.deepcopy(METADATA)
    data.update(snapshotId=snapshot_id, bottlerocketVersion=version, **extra)
    return json.dumps(data)


def publish(ssm, snapshot_id: str, version: str = "1.50.0", **extra) -> None:
    """Like the pipeline: metadata first, the ID last."""
    ssm.put_parameter(Name=META, Value=metadata(snapshot_id, version, **extra), Type="String", Overwrite=True)
    ssm.put_parameter(Name=PARAM, Value=snapshot_id, Type="String", Overwrite=True)


def test_published_snapshot_with_its_metadata(ssm) -> None:
    publish(ssm, SNAPSHOT_ID, volumeSizeGiB=80)
    snap = read_published(ssm, PARAM)
    assert snap is not None
    assert snap.snapshot_id == SNAPSHOT_ID and snap.source == PARAM
    assert snap.bottlerocket_version == "1.50.0" and snap.kubernetes_version == METADATA["kubernetesVersion"] == "1.36"
    assert snap.images[0].pinned == METADATA["images"][0]["pinned"]
    assert snap.images[0].repository_and_tag == "vllm/vllm-openai:v0.34.0"
    assert snap.platforms == ("amd64",) and snap.volume_size_gib == 80
    assert snap.metadata_source == f"{META} (version 1)" and snap.notes == ()


def test_nothing_published_is_none(ssm) -> None:
    assert read_published(ssm, PARAM) is None


def test_metadata_missing_keeps_the_id(ssm) -> None:
    ssm.put_parameter(Name=PARAM, Value=SNAPSHOT_ID, Type="String")
    snap = read_published(ssm, PARAM)
    assert snap.snapshot_id == SNAPSHOT_ID and not snap.has_metadata and snap.bottlerocket_version is None
    assert any("is not published" in n for n in snap.notes)


def test_stale_metadata_ahead_of_the_id_falls_back_to_the_matching_history_version(ssm) -> None:
    # Given OLD published, then a publish of NEW that wrote its metadata but stopped before the ID
    publish(ssm, OLD_ID, "1.49.0")
    ssm.put_parameter(Name=META, Value=metadata(NEW_ID, "1.51.0"), Type="String", Overwrite=True)
    snap = read_published(ssm, PARAM)
    # Then the ID wins, with the metadata that describes it
    assert snap.snapshot_id == OLD_ID
    assert snap.bottlerocket_version == "1.49.0"
    assert snap.metadata_source == f"{META} (version 1)"
    assert any("stale metadata" in n for n in snap.notes)


def test_stale_metadata_without_a_match_is_ignored(ssm) -> None:
    ssm.put_parameter(Name=PARAM, Value=OLD_ID, Type="String")
    ssm.put_parameter(Name=META, Value=metadata(NEW_ID, "1.51.0"), Type="String")
    snap = read_published(ssm, PARAM)
    assert snap.snapshot_id == OLD_ID
    assert snap.bottlerocket_version is None and snap.images == () and not snap.has_metadata  # never NEW's version
    assert any("stale" in n for n in snap.notes) and any("without metadata" in n for n in snap.notes)


def test_override_rolls_back_to_an_older_snapshot_with_its_metadata(ssm) -> None:
    publish(ssm, OLD_ID, "1.49.0")
    publish(ssm, NEW_ID, "1.51.0")
    snap = read_published(ssm, PARAM, snapshot_id=OLD_ID)
    assert snap.snapshot_id == OLD_ID and snap.source == "--snapshot-id"
    assert snap.bottlerocket_version == "1.49.0"


def test_override_of_the_current_snapshot_uses_the_current_metadata(ssm) -> None:
    publish(ssm, NEW_ID, "1.51.0")
    snap = read_published(ssm, PARAM, snapshot_id=NEW_ID)
    assert snap.bottlerocket_version == "1.51.0" and snap.notes == ()


def test_override_works_when_nothing_is_published(ssm) -> None:
    snap = read_published(ssm, PARAM, snapshot_id=NEW_ID)
    assert snap.snapshot_id == NEW_ID and not snap.has_metadata


def test_malformed_override_is_rejected_before_any_call(ssm) -> None:
    with pytest.raises(ChartInputError, match="--snapshot-id"):
        read_published(ssm, PARAM, snapshot_id="snap-nothex!")


def test_malformed_published_id_is_an_error_naming_the_parameter(ssm) -> None:
    ssm.put_parameter(Name=PARAM, Value="pending", Type="String")
    with pytest.raises(ChartInputError, match=r"/vllm-coldstart/snapshot-id \(Parameter Store, version 1\): invalid value 'pending'"):
        read_published(ssm, PARAM)


def test_unparseable_metadata_is_ignored_with_a_note(ssm) -> None:
    ssm.put_parameter(Name=META, Value="{not json", Type="String")
    ssm.put_parameter(Name=PARAM, Value=SNAPSHOT_ID, Type="String")
    snap = read_published(ssm, PARAM)
    assert snap.snapshot_id == SNAPSHOT_ID and not snap.has_metadata
    assert any("not a JSON object" in n for n in snap.notes)


def test_bad_bottlerocket_version_in_metadata_is_ignored(ssm) -> None:
    publish(ssm, SNAPSHOT_ID, version="latest")
    snap = read_published(ssm, PARAM)
    assert snap.bottlerocket_version is None
    assert any("bottlerocketVersion 'latest'" in n for n in snap.notes)


def test_metadata_read_denied_keeps_the_id(ssm, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    ssm.put_parameter(Name=PARAM, Value=SNAPSHOT_ID, Type="String")
    real_get = ssm.get_parameter

    def get_parameter(Name, **kwargs):  # noqa: N803  (boto3's argument name)
        if Name == META:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "GetParameter")
        return real_get(Name=Name, **kwargs)

    monkeypatch.setattr(ssm, "get_parameter", get_parameter)
    snap = read_published(ssm, PARAM)
    assert snap.snapshot_id == SNAPSHOT_ID and not snap.has_metadata
    assert any("AccessDeniedException" in n for n in snap.notes)
