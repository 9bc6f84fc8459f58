"""The one helper the infrastructure tests share on top of aws_cdk.assertions: find_resources returns every
match, and most facts are about exactly one resource (one bucket, one role), so finding more is a failure too."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template


def only_resource(template: Template, type_: str, pattern: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The logical ID and body of the single resource of ``type_`` matching ``pattern`` (a find_resources
    pattern on the whole resource, e.g. ``{"Properties": Match.object_like({...})}``); fails unless exactly one."""
    found = template.find_resources(type_, pattern or {})
    assert len(found) == 1, f"expected one {type_} matching {pattern}, found {sorted(found)}"
    ((logical, resource),) = found.items()
    return logical, resource


def described(fragment: str) -> dict[str, Any]:
    """A find_resources pattern: a resource whose Description contains ``fragment`` (plain words: it is a regex)."""
    return {"Properties": {"Description": Match.string_like_regexp(fragment)}}


def role_described(template: Template, fragment: str) -> tuple[str, dict[str, Any]]:
    """The one IAM role whose Description contains ``fragment``."""
    return only_resource(template, "AWS::IAM::Role", described(fragment))
