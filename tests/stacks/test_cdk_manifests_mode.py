"""`manifestsDeployment = cdk`: the cluster stack applies the charts after Karpenter is installed."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from k8s_charts.published import PublishedSnapshot
from settings import names
from settings.config import load_default_config

pytestmark = pytest.mark.synth
SNAPSHOT = "snap-0123456789abcdef0"
MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"


@pytest.fixture(scope="module")
def cluster_template(tmp_path_factory) -> Template:
    from app import build_app, new_app

    outdir = tmp_path_factory.mktemp("cdk-mode")
    app = new_app(outdir=str(outdir))
    published = PublishedSnapshot(snapshot_id=SNAPSHOT, source="test", bottlerocket_version="1.50.0")
    build_app(app, load_default_config(manifestsDeployment="cdk"), published=published)
    app.synth()  # cdk-nag included
    return Template.from_json(json.loads((outdir / f"{names.CLUSTER_STACK}.template.json").read_text()))


def _manifest_texts(template: Template) -> dict[str, str]:
    """Each applied manifest as text (its body mixes JSON with intrinsics), by logical ID."""
    return {k: json.dumps(r["Properties"]["Manifest"]) for k, r in template.find_resources(MANIFEST).items()}


def test_nodeclass_from_the_published_snapshot_is_applied_after_karpenter(cluster_template: Template) -> None:
    texts = _manifest_texts(cluster_template)
    [logical] = [k for k, text in texts.items() if "EC2NodeClass" in text]
    assert SNAPSHOT in texts[logical]
    assert "bottlerocket@v1.50.0" in texts[logical]
    helm = cluster_template.find_resources("Custom::AWSCDK-EKS-HelmChart",
                                           {"Properties": {"Chart": Match.string_like_regexp("karpenter$")}})
    depends_on = cluster_template.find_resources(MANIFEST)[logical].get("DependsOn", [])
    assert helm and set(helm) <= set(depends_on)
    assert any("Deployment" in t and "runai_streamer" in t for t in texts.values())


def test_default_mode_leaves_manifests_to_kubectl(synthesized_app) -> None:
    # Absence across every resource type: find_resources needs a type, so this reads the template's resources whole.
    resources = Template.from_json(synthesized_app.template(names.CLUSTER_STACK)).to_json()["Resources"]
    assert not [r for r in resources.values() if "EC2NodeClass" in json.dumps(r)]
