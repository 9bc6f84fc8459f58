"""Checks for the values the charts are built from, so bad input fails at synth with the field named.

Config values are validated once by ``settings.config``; the charts check again the values they
depend on because they also receive values from elsewhere (Parameter Store, command-line flags,
the cluster stack) and because a config object can be built around the loader
(``dataclasses.replace``). Every message names the field, the bad value and the fix.

Values that are CDK tokens (``${Token[...]}``: unresolved references such as a role name from the
cluster stack) are resolved by CloudFormation at deploy time; they cannot be checked here and pass.
"""

from __future__ import annotations

import re

from settings.config import INSTANCE_FAMILY, PREFIX

SNAPSHOT_ID = re.compile(r"snap-[0-9a-f]{8,17}")
BUCKET_NAME = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# s3://bucket/prefix/ — the streamer reads *.safetensors directly under the prefix, so the URI
# names a "directory": it must end with '/'.
MODEL_URI = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<prefix>[^\s]*[^/\s])/")
IAM_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
IAM_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}")
ACCOUNT = re.compile(r"\d{12}")
REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
# Values of a NodePool requirement (CRD pattern) — an instance family must also satisfy it.
REQUIREMENT_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

VOLUME_INITIALIZATION_RATE_RANGE = (100, 300)  # MiB/s, EBS provisioned rate for volume initialization


class ChartInputError(ValueError):
    """A value the charts are built from is invalid. The message names the field and the fix."""


def fail(field: str, value: object, fix: str) -> ChartInputError:
    return ChartInputError(f"{field}: invalid value {value!r}; {fix}")


def is_token(value: object) -> bool:
    """True for an unresolved CDK token (resolved by CloudFormation at deploy time)."""
    return isinstance(value, str) and "${Token[" in value


def config_field(name: str) -> str:
    return PREFIX + name


def check_snapshot_id(value: object, field: str) -> str:
    if is_token(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not SNAPSHOT_ID.fullmatch(value):
        raise fail(field, value, "expected an EBS snapshot ID such as snap-0123456789abcdef0 (snap- and 8-17 hex digits)")
    return value


def check_volume_initialization_rate(value: object, field: str = config_field("volumeInitializationRate")) -> int | None:
    if value is None:
        return None
    lo, hi = VOLUME_INITIALIZATION_RATE_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise fail(field, value, f"expected a whole number of MiB/s from {lo} to {hi}, or null for lazy loading")
    return value


def check_model_uri(value: object, field: str = "model URI") -> str:
    if not isinstance(value, str):
        raise fail(field, value, "expected s3://<bucket>/<prefix>/")
    if is_token(value):
        return value
    match = MODEL_URI.fullmatch(value)
    if not match:
        raise fail(field, value, "expected s3://<bucket>/<prefix>/ (the Run:ai streamer reads the model from S3; "
                                 "*.safetensors, config.json and the tokenizer sit directly under the prefix, and the URI ends with '/')")
    bucket = match.group("bucket")
    if not is_token(bucket) and not BUCKET_NAME.fullmatch(bucket):
        raise fail(field, value, f"{bucket!r} is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')")
    return value


def check_bucket_name(value: object, field: str) -> str:
    if is_token(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not BUCKET_NAME.fullmatch(value):
        raise fail(field, value, "expected an S3 bucket name (3-63 characters: a-z, 0-9, '.', '-'), not a URI")
    return value


def check_instance_families(values: object, field: str = config_field("gpuInstanceFamilies")) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values:
        raise fail(field, values, "expected a non-empty list of instance families such as [\"g5\", \"g6\"]")
    for family in values:
        if not isinstance(family, str) or not re.fullmatch(INSTANCE_FAMILY, family) or not REQUIREMENT_VALUE.fullmatch(family) \
                or len(family) > 63:
            raise fail(field, family, "expected an instance family such as g4dn, g5 or g6e (lowercase letters then a "
                                      "generation digit; no size such as .xlarge and no wildcards)")
    return tuple(values)


def check_capacity_types(values: object, field: str = config_field("gpuCapacityTypes")) -> tuple[str, ...]:
    allowed = ("spot", "on-demand")
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values or any(v not in allowed for v in values):
        raise fail(field, values, f"expected a non-empty list of {', '.join(allowed)}")
    return tuple(values)


def check_data_volume_size(node_size_gib: int, snapshot_size_gib: int, snapshot_source: str,
                           field: str = config_field("nodeDataVolumeSizeGiB")) -> int:
    if node_size_gib < snapshot_size_gib:
        raise fail(field, node_size_gib,
                   f"the data volume is restored from a snapshot of {snapshot_size_gib} GiB ({snapshot_source}) and an EBS "
                   f"volume cannot be smaller than its snapshot; set it to at least {snapshot_size_gib}")
    return node_size_gib


def check_role_name(value: object, field: str) -> str:
    if is_token(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not IAM_ROLE_NAME.fullmatch(value):
        raise fail(field, value, "expected an IAM role NAME (not an ARN or instance profile), such as KarpenterNodeRole-<cluster>")
    return value


def check_role_arn(value: object, field: str) -> str:
    if is_token(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not IAM_ROLE_ARN.fullmatch(value):
        raise fail(field, value, "expected an IAM role ARN such as arn:aws:iam::123456789012:role/vllm-model-read")
    return value


def check_account(value: object, field: str) -> str | None:
    if value is None or is_token(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not ACCOUNT.fullmatch(value):
        raise fail(field, value, "expected a 12-digit AWS account ID")
    return value


def check_region(value: object, field: str) -> str | None:
    if value is None or is_token(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str) or not REGION.fullmatch(value):
        raise fail(field, value, "expected an AWS region such as us-west-2")
    return value
