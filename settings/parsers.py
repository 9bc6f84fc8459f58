"""Parsers for configuration values: each takes (key, raw value) and returns the typed value or raises
``ConfigError`` naming the key, the value and what is allowed.

Values given on the command line (``-c coldstart:key=value``) arrive as strings, so each parser also
accepts JSON in a string. Used by ``settings.config`` (stack side) and, through the same field
declarations, by the pipeline's handlers when they read their settings.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PREFIX = "coldstart:"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid. The message names the key."""


# --- parsers: each takes the raw value (JSON value or CLI string) and returns the typed value ----

Parser = Callable[[str, Any], Any]


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{PREFIX}{key}: invalid value {value!r}; {allowed}")


def _from_string(value: Any) -> Any:
    """`-c key=value` gives strings; accept JSON in them (lists, numbers, booleans, null)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def text(pattern: str, allowed: str, *, optional: bool = False) -> Parser:
    rx = re.compile(pattern)

    def parse(key: str, value: Any) -> Any:
        if value is None or value in ("", "null"):
            if optional:
                return None
            raise _fail(key, value, allowed)
        if not isinstance(value, str) or not rx.fullmatch(value):
            raise _fail(key, value, allowed)
        return value

    return parse


def integer(lo: int, hi: int, *, optional: bool = False) -> Parser:
    def parse(key: str, value: Any) -> Any:
        value = _from_string(value)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _fail(key, value, f"expected a whole number from {lo} to {hi}")
        return value

    return parse


def number(lo: float, hi: float) -> Parser:
    def parse(key: str, value: Any) -> Any:
        value = _from_string(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise _fail(key, value, f"expected a number from {lo} to {hi}")
        return float(value)

    return parse


def boolean(key: str, value: Any) -> bool:
    value = _from_string(value)
    if not isinstance(value, bool):
        raise _fail(key, value, "expected true or false")
    return value


def string_list(item: Parser, *, min_items: int = 0, unique: bool = True) -> Parser:
    def parse(key: str, value: Any) -> Any:
        value = _from_string(value)
        if isinstance(value, str):  # "a,b" from the command line
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or len(value) < min_items:
            raise _fail(key, value, f"expected a list of at least {min_items} item(s)")
        items = tuple(item(key, v) for v in value)
        if unique and len(set(items)) != len(items):
            raise _fail(key, value, "list items must be unique")
        return items

    return parse


def choice(*options: str) -> Parser:
    def parse(key: str, value: Any) -> Any:
        if value not in options:
            raise _fail(key, value, f"expected one of {', '.join(options)}")
        return value

    return parse


def cidr(key: str, value: Any) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError):
        raise _fail(key, value, "expected an IPv4 CIDR block such as 10.40.0.0/16") from None
    if net.version != 4 or not 16 <= net.prefixlen <= 20:
        raise _fail(key, value, "expected an IPv4 CIDR block from /16 to /20 (room for subnets)")
    return str(net)


ROLE_ARN = r"arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}"


def role_arn(key: str, value: Any) -> str:
    """An IAM role ARN (not an STS session ARN: access entries name the role)."""
    if isinstance(value, str) and ":assumed-role/" in value:
        raise _fail(key, value, "that is an STS session ARN; give the role's ARN, arn:aws:iam::<account>:role/<name> "
                                "(aws iam get-role --role-name <name> --query Role.Arn)")
    if not isinstance(value, str) or not re.fullmatch(ROLE_ARN, value):
        raise _fail(key, value, "expected IAM role ARNs such as arn:aws:iam::123456789012:role/Admin")
    return value


def bottlerocket_version(key: str, value: Any) -> str:
    if value == "latest":
        raise _fail(key, value, "bottlerocket@latest drifts (replaces) every GPU node at each Bottlerocket release; "
                                "pin a version such as 1.50.0 (the one your snapshot was built with)")
    if not isinstance(value, str) or not re.fullmatch(r"v?\d+\.\d+\.\d+", value):
        raise _fail(key, value, "expected a pinned Bottlerocket version such as 1.50.0")
    return value.lstrip("v")


def schedule(key: str, value: Any) -> str | None:
    if value in (None, "", "off", "none", False):
        return None
    if isinstance(value, str) and re.fullmatch(r"(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))", value):
        return value
    raise _fail(key, value, 'expected "rate(7 days)", "cron(0 3 ? * SUN *)" or "off"')


@dataclass(frozen=True)
class ProbeSettings:
    """An HTTP probe's timing (the path is fixed by vLLM: /v1/models or /health)."""

    periodSeconds: int
    timeoutSeconds: int
    failureThreshold: int


def probe_settings(key: str, value: Any) -> ProbeSettings:
    value = _from_string(value)
    keys = ("periodSeconds", "timeoutSeconds", "failureThreshold")
    allowed = 'expected {"periodSeconds": 1-3600, "timeoutSeconds": 1-period, "failureThreshold": 1-1000}'
    if not isinstance(value, dict) or set(value) != set(keys):
        raise _fail(key, value, allowed)
    limits = {"periodSeconds": 3600, "timeoutSeconds": 3600, "failureThreshold": 1000}
    for name in keys:
        item = value[name]
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= limits[name]:
            raise _fail(key, value, f"{name} {item!r} out of range; {allowed}")
    if value["timeoutSeconds"] > value["periodSeconds"]:
        raise _fail(key, value, "timeoutSeconds must not exceed periodSeconds (probes would overlap)")
    return ProbeSettings(**value)


# auto = no --quantization flag: vLLM detects the method from the checkpoint (config.json) and upgrades
# awq/gptq to their Marlin kernels where the GPU supports them (compute capability >= 8.0).
QUANTIZATIONS = ("auto", "awq", "awq_marlin", "gptq", "gptq_marlin", "fp8")
K8S_VERSION = r"1\.(2[89]|3[0-9])"
INSTANCE_FAMILY = r"[a-z]+[0-9]+[a-z0-9-]*"  # g4dn, g5, g6e, p4d, g6-...
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
S3_PREFIX = r"[A-Za-z0-9!_.*'()-]([A-Za-z0-9!_.*'()/-]*[A-Za-z0-9!_.*'()-])?"  # no leading or trailing slash
IMAGE_REF = r"[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]{1,128})?(@sha256:[a-f0-9]{64})?"
SSM_PARAMETER = r"/[A-Za-z0-9_.\-/]{1,1000}[A-Za-z0-9_.\-]"
