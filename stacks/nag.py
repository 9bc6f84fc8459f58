"""cdk-nag wiring: the AwsSolutions pack over the whole app, and reasoned acknowledgements.

cdk-nag 3.x reports through CDK's policy-validation mechanism (``Validations.of(app)``): an
unacknowledged finding fails ``app.synth()``. Every acknowledgement must carry a reason a
reviewer would accept; ``acknowledge`` refuses short or generic ones.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

_MIN_REASON = 40


def enable_aws_solutions_checks(app: App) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions rule (optionally one finding: ``AwsSolutions-IAM5[Resource::*]``)."""
    if not rule.startswith("AwsSolutions-"):
        raise ValueError(f"acknowledge: rule {rule!r} is not an AwsSolutions rule id")
    if len(reason.strip()) < _MIN_REASON:
        raise ValueError(f"acknowledge: the reason for {rule} on {scope.node.path} is too short to review: {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_findings(scope: IConstruct, rule: str, findings: list[str], reason: str) -> None:
    """Acknowledge each listed finding of a granular rule (``AwsSolutions-IAM5[<finding>]``)."""
    for finding in findings:
        acknowledge(scope, f"{rule}[{finding}]", reason)


def nag_resource(scope: IConstruct, value: str) -> str:
    """Render a (possibly tokenized) ARN the way cdk-nag prints it in ``Resource::...`` findings.

    cdk-nag flattens intrinsics: ``Fn::Join`` is concatenated, ``Fn::GetAtt`` becomes
    ``<Logical.Attr>``, ``Ref`` becomes ``<Ref>`` and ``Fn::ImportValue`` its export name.
    """
    from aws_cdk import Stack

    def flat(node: object) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Fn::Join":
                return str(arg[0]).join(flat(p) for p in arg[1])
            if fn == "Fn::GetAtt":
                return f"<{arg[0]}.{arg[1]}>"
            if fn == "Ref":
                return f"<{arg}>"
            if fn == "Fn::ImportValue":
                return flat(arg)
        raise ValueError(f"nag_resource: cannot render {node!r}")

    return flat(Stack.of(scope).resolve(value))
