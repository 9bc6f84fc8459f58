"""Reading the synthesized template: the functions, the state machine and the intrinsics its definition uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coldstart.emulator.common import ACCOUNT, EmulatorError


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    environment: dict[str, Any]  # values may still be CloudFormation intrinsics
    timeout: int


def template_functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    out = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        out[logical_id] = FunctionSpec(logical_id, props["Handler"], props.get("Environment", {}).get("Variables", {}),
                                       int(props.get("Timeout", 3)))
    return out


def state_machine_resource(template: dict[str, Any]) -> dict[str, Any]:
    machines = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    if len(machines) != 1:
        raise EmulatorError(f"expected one AWS::StepFunctions::StateMachine in the template, found {len(machines)}")
    return machines[0]


def resolve_intrinsics(value: Any, *, region: str, account: str, attributes: dict[tuple[str, str], str],
                       refs: dict[str, str] | None = None) -> Any:
    """Resolve the intrinsics a definition uses: Fn::Join, Fn::Sub (no variables map), Ref, Fn::GetAtt."""
    pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
    known = {**pseudo, **(refs or {})}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg not in known:
                    raise EmulatorError(f"cannot resolve Ref {arg!r}")
                return known[arg]
            if key == "Fn::GetAtt":
                logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                if (logical_id, attr) not in attributes:
                    raise EmulatorError(f"cannot resolve Fn::GetAtt {logical_id}.{attr}")
                return attributes[(logical_id, attr)]
            if key == "Fn::Join":
                return str(arg[0]).join(str(walk(p)) for p in arg[1])
            if key == "Fn::Sub" and isinstance(arg, str):
                text = arg
                for name, val in known.items():
                    text = text.replace("${" + name + "}", val)
                return text
        return {k: walk(v) for k, v in node.items()}

    return walk(value)


def state_machine_definition(template: dict[str, Any], function_arns: dict[str, str], *, region: str, account: str = ACCOUNT) -> str:
    """The template's DefinitionString with each Lambda ARN reference replaced by ``function_arns[logical_id]``."""
    props = state_machine_resource(template)["Properties"]
    raw = props.get("DefinitionString")
    if raw is None:
        raise EmulatorError("the state machine has no DefinitionString")
    attributes = {(logical_id, "Arn"): arn for logical_id, arn in function_arns.items()}
    definition = resolve_intrinsics(raw, region=region, account=account, attributes=attributes)
    json.loads(definition)  # must be JSON now
    return definition
