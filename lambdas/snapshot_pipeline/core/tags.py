"""Tags on everything the pipeline creates: IAM conditions, cleanup and the janitor key on them."""

from __future__ import annotations

from typing import Any

from settings import names

MAX_TAG_VALUE = 256


def base_tags(pipeline: str, execution_arn: str, role: str) -> dict[str, str]:
    return {
        names.TAG_MANAGED_BY: names.MANAGED_BY_VALUE,
        names.TAG_PIPELINE: pipeline,
        names.TAG_EXECUTION: execution_arn,
        names.TAG_ROLE: role,
        "Name": f"vllm-coldstart-{role}",
    }


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def as_dict(tags: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def joined_value(items: list[str]) -> str:
    """Space-separated items in one tag value; if they exceed 256 characters, whole items plus "+N more".

    The full list always sits in the metadata parameter; the tag is for people browsing snapshots.
    """
    value = " ".join(items)
    if len(value) <= MAX_TAG_VALUE:
        return value
    kept: list[str] = []
    for i, item in enumerate(items):
        suffix = f" +{len(items) - i} more"
        if len(" ".join([*kept, item])) + len(f" +{len(items) - i - 1} more") > MAX_TAG_VALUE:
            return (" ".join(kept) + suffix).strip()
        kept.append(item)
    return value[:MAX_TAG_VALUE]


def execution_filters(pipeline: str, execution_arn: str) -> list[dict[str, Any]]:
    return [
        {"Name": f"tag:{names.TAG_MANAGED_BY}", "Values": [names.MANAGED_BY_VALUE]},
        {"Name": f"tag:{names.TAG_PIPELINE}", "Values": [pipeline]},
        {"Name": f"tag:{names.TAG_EXECUTION}", "Values": [execution_arn]},
    ]
