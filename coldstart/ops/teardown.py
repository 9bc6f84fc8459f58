"""Teardown before ``cdk destroy``: let Karpenter remove what it launched while it still can.

Karpenter's GPU nodes are EC2 instances that CloudFormation does not know. Destroying the cluster
stack while they run orphans them (they keep billing) and blocks the VPC's deletion (their network
interfaces and the node security group stay in use). So, while the Karpenter controller is still
running:

1. delete every NodePool (``karpenter.sh``): its NodeClaims are garbage-collected, and Karpenter's
   termination finalizer drains each node and terminates its instance;
2. wait until no NodeClaim and no node labelled ``karpenter.sh/nodepool`` is left;
3. delete every EC2NodeClass (``karpenter.k8s.aws``) and wait for them: their finalizer deletes the
   instance profiles Karpenter created, which CloudFormation would otherwise leave behind.

Only then is it safe to destroy the cluster stack. The waiting is a bounded number of polls with an
injected ``sleep`` so tests run without real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from coldstart.ops.errors import OperatorError

NODEPOOLS = "nodepools.karpenter.sh"
NODECLAIMS = "nodeclaims.karpenter.sh"
NODECLASSES = "ec2nodeclasses.karpenter.k8s.aws"
KARPENTER_NODE_LABEL = "karpenter.sh/nodepool"
_NO_RESOURCE_TYPE = "doesn't have a resource type"


class TeardownKubectl(Protocol):
    def get_json(self, *args: str) -> dict[str, Any]: ...

    def run(self, args: list[str]) -> int: ...


@dataclass
class TeardownResult:
    nodepools: list[str] = field(default_factory=list)
    nodes_seen: list[str] = field(default_factory=list)
    nodeclasses: list[str] = field(default_factory=list)
    polls: int = 0


def _names(kubectl: TeardownKubectl, *args: str) -> list[str] | None:
    """Object names, or None when the cluster has no such resource type (Karpenter's CRDs not installed)."""
    try:
        listing = kubectl.get_json("get", *args)
    except OperatorError as err:
        if _NO_RESOURCE_TYPE in str(err):
            return None
        raise
    return sorted(item["metadata"]["name"] for item in listing.get("items", []))


def _delete_all(kubectl: TeardownKubectl, resource: str) -> None:
    # --wait=false: deletion is finished by Karpenter's finalizers; the loop below watches for it.
    code = kubectl.run(["delete", resource, "--all", "--wait=false"])
    if code != 0:
        raise OperatorError(f"kubectl delete {resource} --all failed (exit {code}); see its message above")


def teardown(kubectl: TeardownKubectl, *, sleep: Callable[[], None], max_polls: int,
             emit: Callable[[str], None] = lambda _line: None) -> TeardownResult:
    """Delete the NodePools, wait for Karpenter's nodes to go, then the EC2NodeClasses.

    Raises OperatorError naming what is left when ``max_polls`` polls were not enough; the cluster
    stack must not be destroyed then.
    """
    result = TeardownResult()
    pools = _names(kubectl, NODEPOOLS)
    if pools is None:
        emit("no Karpenter CRDs in this cluster: nothing to tear down")
        return result
    result.nodepools = pools
    if pools:
        emit(f"deleting NodePool(s): {', '.join(pools)}")
        _delete_all(kubectl, NODEPOOLS)
    else:
        emit("no NodePool left")

    def leftovers() -> tuple[list[str], list[str]]:
        claims = _names(kubectl, NODECLAIMS) or []
        nodes = _names(kubectl, "nodes", "-l", KARPENTER_NODE_LABEL) or []
        return claims, nodes

    def wait_for(what: str, remaining: Callable[[], list[str]]) -> None:
        while True:
            left = remaining()
            if not left:
                return
            if result.polls >= max_polls:
                raise OperatorError(
                    f"{what} still present after {result.polls} polls: {', '.join(left)}. Do NOT destroy the cluster "
                    "stack yet (it would orphan EC2 instances and block the VPC's deletion). Check `kubectl describe "
                    f"{NODECLAIMS}` and the Karpenter logs (kubectl logs -n <karpenterNamespace> deploy/karpenter), "
                    "then run teardown again")
            emit(f"waiting for {what}: {', '.join(left)}")
            result.polls += 1
            sleep()

    def claims_and_nodes() -> list[str]:
        claims, nodes = leftovers()
        result.nodes_seen = sorted(set(result.nodes_seen) | set(nodes))
        return [f"nodeclaim/{c}" for c in claims] + [f"node/{n}" for n in nodes]

    wait_for("Karpenter nodes", claims_and_nodes)
    emit("no Karpenter node left")

    classes = _names(kubectl, NODECLASSES) or []
    result.nodeclasses = classes
    if classes:
        emit(f"deleting EC2NodeClass(es): {', '.join(classes)} (Karpenter removes their instance profiles)")
        _delete_all(kubectl, NODECLASSES)
        wait_for("EC2NodeClasses", lambda: _names(kubectl, NODECLASSES) or [])
    emit("Karpenter has nothing left in EC2: the cluster stack can be destroyed")
    return result
