"""Validate custom resources the way the API server would: defaults, openAPIV3Schema, then CEL.

- Defaults: structural-schema defaults are applied first (the API server defaults before it
  validates, and some CEL rules read defaulted fields).
- Schema: jsonschema against the CRD's openAPIV3Schema, made STRICT: an object schema that lists
  ``properties`` gets ``additionalProperties: false`` unless it preserves unknown fields. The API
  server would silently prune an unknown (misspelt) field; here it fails the test.
- CEL: every ``x-kubernetes-validations`` rule is evaluated with cel-python, with ``self`` bound
  to the value at the path where the rule is declared (object fields, map values, list items).
  Like the API server, rules under an absent field are not evaluated. Two Kubernetes CEL
  extension functions cel-python lacks are supplied here: ``<string>.split(sep)`` (strings
  library) and ``<string>.find(regex)`` (regex library). Transition rules (those using
  ``oldSelf``) are evaluated only when an old object is given (an update), as the API server
  does; they are skipped on create, and inside list items (no correlation for atomic lists).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy import celtypes

CRD_DIR = Path(__file__).resolve().parents[2] / "k8s_charts" / "crds"


@dataclass(frozen=True)
class CrdVersion:
    group: str
    version: str
    kind: str
    schema: dict[str, Any]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


@cache
def crd_schemas() -> dict[tuple[str, str], CrdVersion]:
    """(apiVersion, kind) -> schema, for every served version of every CRD file."""
    out = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                v = CrdVersion(spec["group"], version["name"], spec["names"]["kind"], version["schema"]["openAPIV3Schema"])
                out[(v.api_version, v.kind)] = v
    return out


def is_custom(obj: dict[str, Any]) -> bool:
    return (obj.get("apiVersion"), obj.get("kind")) in crd_schemas()


# --- defaults ---------------------------------------------------------------------------------

def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                _default(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(schema["items"], item)


# --- openAPIV3Schema (strict) -------------------------------------------------------------------

def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for key, sub in node.items():
                if key in ("properties",):
                    for prop in sub.values():
                        walk(prop)
                elif key in ("items", "additionalProperties"):
                    walk(sub)
                elif key in ("anyOf", "allOf", "oneOf"):
                    for alt in sub:
                        walk(alt)

    walk(schema)
    return schema


def schema_errors(obj: dict[str, Any]) -> list[str]:
    crd = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    validator = jsonschema.Draft7Validator(strict_schema(crd.schema))
    defaulted = apply_defaults(crd.schema, obj)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(defaulted)]


# --- CEL ----------------------------------------------------------------------------------------

def _split(value: Any, sep: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(p) for p in str(value).split(str(sep))])


def _find(value: Any, pattern: Any) -> celtypes.StringType:
    match = re.search(str(pattern), str(value))
    return celtypes.StringType(match.group(0) if match else "")


K8S_CEL_EXTENSIONS = {"split": _split, "find": _find}
_ENV = celpy.Environment()


@cache
def _program(rule: str) -> Any:
    return _ENV.program(_ENV.compile(rule), functions=K8S_CEL_EXTENSIONS)


@dataclass
class CelReport:
    failures: list[str] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)  # "path: rule" for every rule evaluated
    skipped: list[str] = field(default_factory=list)  # transition rules without an old value


_MISSING = object()


def cel_report(obj: dict[str, Any], old: dict[str, Any] | None = None) -> CelReport:
    crd = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    report = CelReport()
    new = apply_defaults(crd.schema, obj)
    previous = apply_defaults(crd.schema, old) if old is not None else _MISSING
    _walk(crd.schema, new, previous, "", report)
    return report


def _walk(schema: dict[str, Any], value: Any, old: Any, path: str, report: CelReport) -> None:
    for rule in schema.get("x-kubernetes-validations", []):
        text = rule["rule"]
        where = f"{path or '<root>'}: {text}"
        if "oldSelf" in text and old is _MISSING:
            report.skipped.append(where)
            continue
        activation = {"self": celpy.json_to_cel(value)}
        if old is not _MISSING:
            activation["oldSelf"] = celpy.json_to_cel(old)
        report.evaluated.append(where)
        try:
            result = _program(text).evaluate(activation)
        except celpy.CELEvalError as err:  # the API server rejects an object whose rule errors
            report.failures.append(f"{path}: {rule.get('message', text)} (error: {err.args[0]})")
            continue
        if result is not True and result != celtypes.BoolType(True):
            report.failures.append(f"{path}: {rule.get('message', text)}")
    if isinstance(value, dict):
        old_map = old if isinstance(old, dict) else {}
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _walk(sub, value[name], old_map.get(name, _MISSING), f"{path}.{name}", report)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                _walk(extra, item, old_map.get(key, _MISSING), f"{path}[{key}]", report)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(schema["items"], item, _MISSING, f"{path}[{i}]", report)
