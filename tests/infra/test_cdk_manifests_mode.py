"""`manifestsDeployment = cdk`: the cluster stack applies the charts after Karpenter is installed."""

from __future__ import annotations

import json

import pytest

from k8s_charts.published import PublishedSnapshot
from settings import names
from settings.config import load_default_config

pytestmark = pytest.mark.synth
SNAPSHOT = "snap-0123456789abcdef0"


@pytest.fixture(scope="module")
def cluster_template(tmp_path_factory) -> dict:
    from app import build_app, new_app

    outdir = tmp_path_factory.mktemp("cdk-mode")
    app = new_app(outdir=str(outdir))
    published = PublishedSnapshot(snapshot_id=SNAPSHOT, source="test", bottlerocket_version="1.50.0")
    build_app(app, load_default_config(manifestsDeployment="cdk"), published=published)
    app.synth()  # cdk-nag included
    return json.loads((outdir / f"{names.CLUSTER_STACK}.template.json").read_text())


def _manifest_resources(template: dict) -> dict[str, list[dict]]:
    out = {}
    for logical, res in template["Resources"].items():
        if res["Type"] == "Custom::AWSCDK-EKS-KubernetesResource":
            body = res["Properties"]["Manifest"]
            text = json.dumps(body)
            out[logical] = (res, text)
    return out


def test_nodeclass_from_the_published_snapshot_is_applied_after_karpenter(cluster_template) -> None:
    resources = _manifest_resources(cluster_template)
    [(logical, (res, text))] = [(k, v) for k, v in resources.items() if "EC2NodeClass" in v[1]]
    assert SNAPSHOT in text
    assert "bottlerocket@v1.50.0" in text
    helm = [k for k, r in cluster_template["Resources"].items()
            if r["Type"] == "Custom::AWSCDK-EKS-HelmChart" and r["Properties"]["Chart"].endswith("karpenter")]
    assert set(helm) <= set(res.get("DependsOn", []))
    assert any("Deployment" in t and "runai_streamer" in t for _, t in resources.values())


def test_default_mode_leaves_manifests_to_kubectl(synthesized_app) -> None:
    template = synthesized_app.template(names.CLUSTER_STACK)
    assert not [r for r in template["Resources"].values() if "EC2NodeClass" in json.dumps(r)]
