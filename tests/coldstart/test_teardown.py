"""Teardown against a fake kubectl that plays Karpenter: NodePools deleted -> NodeClaims and nodes go
after some polls -> EC2NodeClasses go. No real time passes: ``sleep`` advances the fake cluster."""

from __future__ import annotations

from typing import Any

import pytest

from coldstart.ops.errors import OperatorError
from coldstart.ops.teardown import NODECLAIMS, NODECLASSES, NODEPOOLS, teardown


def _items(names: list[str]) -> dict[str, Any]:
    return {"items": [{"metadata": {"name": n}} for n in names]}


class FakeCluster:
    """Karpenter in miniature: nodes drain ``drain_polls`` polls after their NodePool is deleted."""

    def __init__(self, *, pools: list[str], nodes: list[str], classes: list[str], drain_polls: int,
                 crds: bool = True) -> None:
        self.pools, self.nodes, self.classes = pools, nodes, classes
        self.drain_polls, self.crds = drain_polls, crds
        self.deleted: list[str] = []
        self.calls: list[tuple[str, ...]] = []
        self.polls_since_delete: int | None = None

    # --- kubectl ---
    def get_json(self, *args: str) -> dict[str, Any]:
        self.calls.append(args)
        resource = args[1]
        if resource in (NODEPOOLS, NODECLAIMS, NODECLASSES) and not self.crds:
            raise OperatorError(f'kubectl get {resource} failed: error: the server doesn\'t have a resource type "{resource}"')
        if resource == NODEPOOLS:
            return _items(self.pools)
        if resource == NODECLAIMS:
            return _items([f"claim-{n}" for n in self.nodes])
        if resource == "nodes":
            assert args[2:] == ("-l", "karpenter.sh/nodepool")  # only Karpenter's nodes, never the system nodes
            return _items(self.nodes)
        if resource == NODECLASSES:
            return _items(self.classes)
        raise AssertionError(args)

    def run(self, args: list[str]) -> int:
        self.calls.append(tuple(args))
        assert args[0] == "delete" and args[2:] == ["--all", "--wait=false"]
        self.deleted.append(args[1])
        if args[1] == NODEPOOLS:
            self.pools = []
            self.polls_since_delete = 0
        if args[1] == NODECLASSES:
            # the instance-profile finalizer only completes once no node uses the class
            assert not self.nodes, "EC2NodeClasses deleted while nodes still ran"
            self.classes = []
        return 0

    # --- time ---
    def sleep(self) -> None:
        if self.polls_since_delete is not None:
            self.polls_since_delete += 1
            if self.polls_since_delete >= self.drain_polls:
                self.nodes = []


def test_deletes_nodepools_waits_for_the_nodes_then_deletes_nodeclasses() -> None:
    cluster = FakeCluster(pools=["gpu"], nodes=["ip-10-40-1-1", "ip-10-40-2-2"], classes=["gpu-bottlerocket"], drain_polls=3)
    lines: list[str] = []
    result = teardown(cluster, sleep=cluster.sleep, max_polls=10, emit=lines.append)
    assert cluster.deleted == [NODEPOOLS, NODECLASSES]
    assert result.nodepools == ["gpu"] and result.nodeclasses == ["gpu-bottlerocket"]
    assert result.nodes_seen == ["ip-10-40-1-1", "ip-10-40-2-2"]
    assert result.polls == 3
    assert lines[-1].startswith("Karpenter has nothing left")


def test_gives_up_naming_what_is_left_and_says_not_to_destroy() -> None:
    cluster = FakeCluster(pools=["gpu"], nodes=["ip-10-40-1-1"], classes=["gpu-bottlerocket"], drain_polls=50)
    with pytest.raises(OperatorError, match=r"Karpenter nodes still present after 5 polls: nodeclaim/claim-ip-10-40-1-1, "
                                            r"node/ip-10-40-1-1\. Do NOT destroy the cluster stack"):
        teardown(cluster, sleep=cluster.sleep, max_polls=5)
    assert NODECLASSES not in cluster.deleted  # the classes stay while nodes may still need them


def test_nothing_to_do_without_karpenter_crds() -> None:
    cluster = FakeCluster(pools=[], nodes=[], classes=[], drain_polls=0, crds=False)
    result = teardown(cluster, sleep=cluster.sleep, max_polls=1)
    assert cluster.deleted == [] and result.nodepools == []


def test_an_empty_cluster_still_removes_leftover_nodeclasses_without_waiting() -> None:
    cluster = FakeCluster(pools=[], nodes=[], classes=["gpu-bottlerocket"], drain_polls=0)
    result = teardown(cluster, sleep=cluster.sleep, max_polls=1)
    assert cluster.deleted == [NODECLASSES] and result.polls == 0


def test_cli_refuses_without_a_cluster(cli) -> None:
    result = cli("teardown", "--yes")
    assert result.exit_code == 1
    assert "cannot reach the cluster" in result.output and "karpenter.sh/nodepool" in result.output
