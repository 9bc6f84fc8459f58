"""The CDK path (cluster.add_cdk8s_chart on an aws_eks_v2 cluster) applies the same objects as the
standalone synth: build_charts is shared, and only CDK's prune label is added."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import cdk8s
import pytest
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
from aws_cdk.lambda_layer_kubectl_v36 import KubectlV36Layer
from chart_helpers import ACCOUNT, BUCKET, NODE_ROLE, REGION, published_fixture

from k8s_charts.charts import build_charts
from settings.config import load_default_config

pytestmark = pytest.mark.synth
MANIFEST_TYPE = "Custom::AWSCDK-EKS-KubernetesResource"
PRUNE_LABEL_PREFIX = "aws.cdk.eks/prune-"
CFG = load_default_config()


def standalone(**kwargs: Any) -> dict[str, list[dict]]:
    app = cdk8s.App()
    built = build_charts(app, CFG, published_fixture(), **kwargs)
    return {chart.node.id: list(chart.to_json()) for chart in built.charts}


def _resolve(manifest: Any, refs: dict[str, str]) -> list[dict]:
    """The Manifest property: a JSON string, or Fn::Join around tokens (Ref -> placeholder)."""
    if isinstance(manifest, str):
        return json.loads(manifest)
    sep, parts = manifest["Fn::Join"]
    return json.loads(sep.join(p if isinstance(p, str) else refs[p["Ref"]] for p in parts))


def _strip_prune_labels(objects: list[dict]) -> list[dict]:
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        pruned = [k for k in labels if k.startswith(PRUNE_LABEL_PREFIX)]
        assert len(pruned) == 1  # CDK's only addition
        del labels[pruned[0]]
    return objects


@pytest.fixture(scope="module")
def cdk_manifests():
    app = cdk.App()
    stack = cdk.Stack(app, "ChartParity")
    cluster = eks.Cluster(stack, "Cluster", version=eks.KubernetesVersion.V1_33,
                          kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV36Layer(stack, "Kubectl")))
    node_role = iam.Role(stack, "NodeRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    role_ref = stack.get_logical_id(node_role.node.default_child)
    variants = {
        "plain": dict(node_role_name=NODE_ROLE, model_bucket=BUCKET, account=ACCOUNT, region=REGION),
        "token": dict(node_role_name=node_role.role_name, model_bucket=BUCKET, account=ACCOUNT, region=REGION),
    }
    ids: dict[str, tuple[str, str]] = {}
    for variant, kwargs in variants.items():
        for chart in build_charts(cdk8s.App(), CFG, published_fixture(), **kwargs).charts:
            manifest = cluster.add_cdk8s_chart(f"{variant}-{chart.node.id}", chart)
            ids[stack.get_logical_id(manifest.node.default_child)] = (variant, chart.node.id)
    resources = Template.from_stack(stack).find_resources(MANIFEST_TYPE)
    out: dict[tuple[str, str], list[dict]] = {}
    for logical_id, resource in resources.items():
        out[ids[logical_id]] = _strip_prune_labels(_resolve(resource["Properties"]["Manifest"], {role_ref: "REF-node-role"}))
    return out


def test_cdk_path_applies_the_same_objects_as_the_standalone_synth(cdk_manifests) -> None:
    expected = standalone(node_role_name=NODE_ROLE, model_bucket=BUCKET, account=ACCOUNT, region=REGION)
    assert {chart for variant, chart in cdk_manifests if variant == "plain"} == set(expected)
    for chart, objects in expected.items():
        assert cdk_manifests[("plain", chart)] == objects


def test_a_role_name_token_from_the_cluster_stack_resolves_to_a_ref_in_the_same_place(cdk_manifests) -> None:
    expected = standalone(node_role_name="REF-node-role", model_bucket=BUCKET, account=ACCOUNT, region=REGION)
    assert cdk_manifests[("token", "gpu-nodes")] == expected["gpu-nodes"]
    node_class = next(o for o in cdk_manifests[("token", "gpu-nodes")] if o["kind"] == "EC2NodeClass")
    assert node_class["spec"]["role"] == "REF-node-role"
