"""The synthesized Karpenter controller policies against Karpenter v1.14's own reference.

The reference is the getting-started ``cloudformation.yaml`` of aws/karpenter-provider-aws
(website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml, commit
e0834c2b); its controller policies are transcribed statement by statement in
tests/real/reference/karpenter-v1.14-controller-policies.json, with that source line.

Every reference statement must exist here, in the policy of the same name, with the same actions,
resources and conditions, unless DIFFERENCES lists it with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from settings import names
from settings.config import load_default_config

REFERENCE = json.loads((Path(__file__).parent / "reference" / "karpenter-v1.14-controller-policies.json").read_text())
CFG = load_default_config()

# Sid -> why ours differs from the reference. Empty today: every statement is the reference's.
DIFFERENCES: dict[str, str] = {}
# Differences in how the policies are declared rather than what they allow.
STRUCTURAL_DIFFERENCES = {
    "ManagedPolicyName": "the reference names each policy KarpenterController<Name>Policy-<cluster>; ours are named by "
                         "CloudFormation so two deployments (stages, regions) of one cluster name never collide",
    "ZonalShiftPolicy": "kept although not listed in the issue: it is part of the v1.14 reference",
}


def _flatten(node: Any, known: dict[str, str]) -> Any:
    """Render CloudFormation intrinsics the way the reference's !Sub writes them."""
    if isinstance(node, dict) and len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Fn::Join":
            return str(arg[0]).join(str(_flatten(p, known)) for p in arg[1])
        if fn == "Ref":
            return "${" + arg + "}" if arg.startswith("AWS::") else known[f"Ref:{arg}"]
        if fn == "Fn::GetAtt":
            return known[f"{arg[0]}.{arg[1]}"]
    if isinstance(node, dict):
        return {k: _flatten(v, known) for k, v in node.items()}
    if isinstance(node, list):
        return [_flatten(v, known) for v in node]
    return node


def _as_list(value: Any) -> list[Any]:
    return sorted(value if isinstance(value, list) else [value], key=json.dumps)


def _normal(statement: dict[str, Any]) -> dict[str, Any]:
    conditions = {op: {k: _as_list(v) for k, v in kv.items()} for op, kv in statement.get("Condition", {}).items()}
    return {"Effect": statement["Effect"], "Action": _as_list(statement["Action"]),
            "Resource": _as_list(statement["Resource"]), "Condition": conditions}


def _reference() -> dict[str, dict[str, dict[str, Any]]]:
    text = json.dumps(REFERENCE["policies"]).replace("${ClusterName}", CFG.clusterName)
    return {policy: {s["Sid"]: _normal(s) for s in statements} for policy, statements in json.loads(text).items()}


@pytest.fixture(scope="module")
def ours(synthesized_app) -> dict[str, dict[str, dict[str, Any]]]:
    template = synthesized_app.template(names.CLUSTER_STACK)
    resources = template["Resources"]
    [cluster] = [k for k, v in resources.items() if v["Type"] == "AWS::EKS::Cluster"]
    [node_role] = [k for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"
                   and v["Properties"].get("RoleName") == f"KarpenterNodeRole-{CFG.clusterName}"]
    [queue] = [k for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"]
    known = {
        f"{cluster}.Arn": f"arn:${{AWS::Partition}}:eks:${{AWS::Region}}:${{AWS::AccountId}}:cluster/{CFG.clusterName}",
        f"{node_role}.Arn": "${KarpenterNodeRole.Arn}",
        f"{queue}.Arn": "${KarpenterInterruptionQueue.Arn}",
    }
    policies: dict[str, dict[str, dict[str, Any]]] = {}
    for resource in resources.values():
        description = resource.get("Properties", {}).get("Description", "")
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and description.startswith("Karpenter controller"):
            name = description.split(": ")[1].split(" ")[0] + "Policy"
            document = _flatten(resource["Properties"]["PolicyDocument"], known)
            policies[name] = {s["Sid"]: _normal(s) for s in document["Statement"]}
    return policies


def test_every_reference_policy_exists_with_the_same_statements(ours) -> None:
    reference = _reference()
    assert set(ours) == set(reference)
    for policy, statements in reference.items():
        assert set(ours[policy]) | set(DIFFERENCES) >= set(statements), policy
        assert set(ours[policy]) - set(statements) <= set(DIFFERENCES), f"{policy}: a statement the reference lacks"


def test_every_action_resource_and_condition_of_the_reference_is_granted_as_written(ours) -> None:
    differing = {}
    for policy, statements in _reference().items():
        for sid, expected in statements.items():
            actual = ours[policy].get(sid)
            if actual != expected:
                differing[sid] = (expected, actual)
    assert set(differing) == set(DIFFERENCES), json.dumps(
        {sid: {"reference": e, "ours": a} for sid, (e, a) in differing.items() if sid not in DIFFERENCES}, indent=1)


def test_the_reference_actions_are_all_covered(ours) -> None:
    wanted = {a for policy in _reference().values() for s in policy.values() for a in s["Action"]}
    granted = {a for policy in ours.values() for s in policy.values() for a in s["Action"]}
    assert wanted - granted == set()
    assert {"ec2:DescribeInstanceStatus", "ec2:DescribePlacementGroups", "iam:TagInstanceProfile"} <= granted


def test_the_comparison_catches_a_missing_action(ours) -> None:
    """The check above is not vacuous: drop one action and it differs."""
    broken = json.loads(json.dumps(ours))
    broken["ResourceDiscoveryPolicy"]["AllowRegionalReadActions"]["Action"].remove("ec2:DescribeInstanceStatus")
    assert broken["ResourceDiscoveryPolicy"]["AllowRegionalReadActions"] != _reference()["ResourceDiscoveryPolicy"]["AllowRegionalReadActions"]


def test_structural_differences_hold(synthesized_app) -> None:
    resources = synthesized_app.template(names.CLUSTER_STACK)["Resources"].values()
    karpenter = [r for r in resources if r["Type"] == "AWS::IAM::ManagedPolicy"
                 and r["Properties"].get("Description", "").startswith("Karpenter controller")]
    assert karpenter and all("ManagedPolicyName" not in r["Properties"] for r in karpenter), STRUCTURAL_DIFFERENCES["ManagedPolicyName"]
