"""settings.parameter_store against moto: "not found" is None / [] everywhere, other errors propagate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from settings import parameter_store

NAME = "/vllm-coldstart/snapshot-id"


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name="us-west-2")


def test_get_returns_none_for_a_missing_parameter_and_the_value_once_written(ssm: Any) -> None:
    assert parameter_store.get(ssm, NAME) is None
    parameter_store.put(ssm, NAME, "snap-0123456789abcdef0")
    assert parameter_store.get(ssm, NAME) == "snap-0123456789abcdef0"


def test_put_overwrites_and_history_lists_every_version_oldest_first(ssm: Any) -> None:
    assert parameter_store.history(ssm, NAME) == []
    for value in ("snap-1", "snap-2", "snap-3"):
        parameter_store.put(ssm, NAME, value)
    versions = parameter_store.history(ssm, NAME)
    assert [(v["Value"], v["Version"]) for v in versions] == [("snap-1", 1), ("snap-2", 2), ("snap-3", 3)]
    assert parameter_store.get(ssm, NAME) == "snap-3"


def test_put_passes_the_tier_only_when_given(ssm: Any) -> None:
    parameter_store.put(ssm, NAME, "plain")
    parameter_store.put(ssm, NAME + "/metadata", "{}", tier="Intelligent-Tiering")
    described = {p["Name"]: p for p in ssm.describe_parameters()["Parameters"]}
    assert described[NAME]["Type"] == "String" and described[NAME]["Tier"] == "Standard"
    assert described[NAME + "/metadata"]["Type"] == "String"
    assert ssm.get_parameter(Name=NAME + "/metadata")["Parameter"]["Value"] == "{}"


def test_history_pages_through_more_versions_than_one_page(ssm: Any) -> None:
    # GetParameterHistory returns at most 50 versions a page: the helper follows NextToken
    for i in range(60):
        parameter_store.put(ssm, NAME, f"snap-{i}")
    assert [v["Value"] for v in parameter_store.history(ssm, NAME)] == [f"snap-{i}" for i in range(60)]


class _Denied:
    """An SSM client whose every call is refused: not "not found", so the error must reach the caller."""

    def _refuse(self, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, operation)

    def get_parameter(self, **_: Any) -> Any:
        raise self._refuse("GetParameter")

    def get_paginator(self, _: str) -> Any:
        outer = self

        class _Pages:
            def paginate(self, **__: Any) -> Any:
                raise outer._refuse("GetParameterHistory")

        return _Pages()


def test_errors_other_than_not_found_propagate() -> None:
    with pytest.raises(ClientError, match="AccessDenied"):
        parameter_store.get(_Denied(), NAME)
    with pytest.raises(ClientError, match="AccessDenied"):
        parameter_store.history(_Denied(), NAME)
