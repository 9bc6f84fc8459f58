"""Configuration: every bad value fails at load with a message naming the key, the value and the rule."""

from __future__ import annotations

import json

import pytest

from settings.config import PREFIX, SCHEMA, AppConfig, ConfigError, default_context, load_config, load_default_config


def test_defaults_load_into_a_frozen_typed_object() -> None:
    cfg = load_default_config()
    assert isinstance(cfg, AppConfig)
    assert cfg.gpuInstanceFamilies == ("g4dn", "g5", "g6")
    assert cfg.account is None and cfg.region is None  # environment-agnostic by default
    with pytest.raises(AttributeError):
        cfg.clusterName = "other"  # type: ignore[misc]


def test_schema_and_cdk_json_declare_the_same_keys() -> None:
    declared = {k[len(PREFIX):] for k in default_context()}
    assert declared == set(SCHEMA)
    assert set(SCHEMA) == set(AppConfig.__dataclass_fields__)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("clusterName", "Bad_Name", "lowercase DNS label"),
        ("clusterName", "", "lowercase DNS label"),
        ("kubernetesVersion", "1.19", "supported minor version"),
        ("kubernetesVersion", 1.33, "supported minor version"),
        ("vpcCidr", "10.0.0.0/8", "/16 to /20"),
        ("vpcCidr", "10.0.0.1/16", "IPv4 CIDR"),
        ("maxAzs", 5, "from 2 to 3"),
        ("natGateways", "two", "whole number"),
        ("gpuInstanceFamilies", [], "at least 1"),
        ("gpuInstanceFamilies", ["G5"], "instance families"),
        ("gpuInstanceFamilies", ["g5", "g5"], "unique"),
        ("gpuCapacityTypes", ["reserved"], "spot, on-demand"),
        ("gpuMemoryUtilization", 1.5, "from 0.1 to 0.99"),
        ("quantization", "int3", "awq"),
        ("quantization", "none", "auto, awq"),
        ("bottlerocketFallbackVersion", "latest", "pin a version such as"),
        ("bottlerocketFallbackVersion", "1.50", "pinned Bottlerocket version"),
        ("clusterAdminRoleArns", ["arn:aws:sts::123456789012:assumed-role/Admin/me"], "STS session ARN; give the role's ARN"),
        ("clusterAdminRoleArns", ["Admin"], "IAM role ARNs"),
        ("clusterAdminRoleArns", ["arn:aws:iam::123456789012:role/A", "arn:aws:iam::123456789012:role/A"], "unique"),
        ("modelPrefix", "/models/x", "leading or trailing"),
        ("modelPrefix", "models/x/", "leading or trailing"),
        ("vllmImageTag", "v0.11.0 beta", "image tag"),
        ("extraImages", ["not an image"], "full image references"),
        ("imagePlatforms", ["s390x"], "amd64, arm64"),
        ("snapshotParameterName", "snapshot-id", "starting with /"),
        ("dataVolumeThroughput", 2000, "from 125 to 1000"),
        ("snapshotRetentionCount", 1, "from 2 to 50"),
        ("scheduleExpression", "every week", "rate(7 days)"),
        ("volumeInitializationRate", 500, "from 100 to 300"),
        ("fastSnapshotRestoreAzs", ["us-west-2"], "availability zone"),
        ("alarmEmail", "ops", "email"),
        ("account", "12345", "12-digit"),
        ("compileCacheOnNode", "maybe", "true or false"),
        ("manifestsDeployment", "helm", "kubectl, cdk"),
        ("clusterEndpointCidrs", ["everyone"], "CIDR"),
        ("nodeDataVolumeSizeGiB", 50, "dataVolumeSizeGiB"),  # smaller than the snapshot
        ("startupProbeInitialDelaySeconds", 300, "startupBudgetSeconds"),
        ("startupProbeTimeoutSeconds", 20, "startupProbePeriodSeconds"),
        ("readinessProbe", {"periodSeconds": 5, "timeoutSeconds": 2}, "failureThreshold"),
        ("readinessProbe", {"periodSeconds": 5, "timeoutSeconds": 6, "failureThreshold": 3}, "must not exceed"),
        ("livenessProbe", {"periodSeconds": 0, "timeoutSeconds": 1, "failureThreshold": 3}, "periodSeconds 0 out of range"),
    ],
)
def test_bad_values_name_the_key_and_value(key: str, value: object, fragment: str) -> None:
    context = default_context()
    context[PREFIX + key] = value
    with pytest.raises(ConfigError) as err:
        load_config(context)
    message = str(err.value)
    assert message.startswith(PREFIX + key + ":"), message
    assert fragment in message
    if isinstance(value, str) and value:
        assert repr(value) in message or value in message


def test_missing_and_unknown_keys_are_rejected() -> None:
    context = default_context()
    del context[PREFIX + "clusterName"]
    with pytest.raises(ConfigError, match=r"coldstart:clusterName: missing"):
        load_config(context)
    context = default_context()
    context[PREFIX + "clustername"] = "typo"
    with pytest.raises(ConfigError, match=r"coldstart:clustername: unknown key"):
        load_config(context)


def test_command_line_strings_are_parsed() -> None:
    """`cdk synth -c coldstart:maxAzs=3` passes strings; they parse to the field's type."""
    context = default_context()
    context.update({PREFIX + "maxAzs": "3", PREFIX + "gpuInstanceFamilies": "g5,g6e",
                    PREFIX + "compileCacheOnNode": "false", PREFIX + "extraImages": json.dumps([]),
                    PREFIX + "account": "null", PREFIX + "scheduleExpression": "off"})
    cfg = load_config(context)
    assert cfg.maxAzs == 3
    assert cfg.gpuInstanceFamilies == ("g5", "g6e")
    assert cfg.compileCacheOnNode is False
    assert cfg.account is None
    assert cfg.scheduleExpression is None


def test_fsr_and_initialization_rate_together_are_rejected() -> None:
    """With both, EBS initializes at the rate and ignores FSR, which keeps billing per AZ-hour."""
    context = default_context()
    context.update({PREFIX + "volumeInitializationRate": 200, PREFIX + "fastSnapshotRestoreAzs": ["us-west-2a"]})
    with pytest.raises(ConfigError, match=r"^coldstart:volumeInitializationRate: .*fastSnapshotRestoreAzs"):
        load_config(context)


def test_startup_failure_threshold_is_derived_from_the_budget() -> None:
    seed = load_default_config()
    # kubelet's first probe may come up to one period after the initial delay, so the window it
    # guarantees is 0 + 2 x (136 - 1) = 270 s (settings.probe_timing).
    assert seed.startup_failure_threshold == 136
    slower = load_default_config(startupBudgetSeconds=600)
    assert (slower.startupProbeInitialDelaySeconds
            + (slower.startup_failure_threshold - 1) * slower.startupProbePeriodSeconds) >= 600
