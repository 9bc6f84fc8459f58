"""Parameter Store reads and writes shared by the Lambdas, the charts and the operator CLI.

The snapshot ID and metadata parameters are the contract between the pipeline (writer) and its
readers, so "not found" means the same everywhere: ``get`` returns None and ``history`` returns [],
while every other error (access denied, throttling) propagates for the caller to translate. Takes
the SSM client as an argument; only botocore's exception type is needed, never boto3.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

NOT_FOUND = "ParameterNotFound"


def is_not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) == NOT_FOUND


def get(ssm: Any, name: str) -> str | None:
    """The parameter's current value, or None if it does not exist."""
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def history(ssm: Any, name: str) -> list[dict[str, Any]]:
    """Every version of the parameter (GetParameterHistory items), oldest first; [] if it does not exist."""
    try:
        versions = [p for page in ssm.get_paginator("get_parameter_history").paginate(Name=name) for p in page["Parameters"]]
    except ClientError as exc:
        if is_not_found(exc):
            return []
        raise
    return sorted(versions, key=lambda p: p["Version"])


def put(ssm: Any, name: str, value: str, *, tier: str | None = None) -> None:
    """Write a String parameter, overwriting any current value (``tier``: e.g. "Intelligent-Tiering")."""
    request: dict[str, Any] = {"Name": name, "Value": value, "Type": "String", "Overwrite": True}
    if tier is not None:
        request["Tier"] = tier
    ssm.put_parameter(**request)
