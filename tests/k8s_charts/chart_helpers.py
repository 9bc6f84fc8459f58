"""Helpers for the chart tests: a published snapshot, a synth helper and lookups. (Not conftest:
other test folders have their own conftest.py, so tests import helpers from this uniquely named module.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from k8s_charts.charts import CHAT_CHART
from k8s_charts.published import PublishedImage, PublishedSnapshot
from settings.config import AppConfig

FIXTURES = Path(__file__).parent / "fixtures"
METADATA = json.loads((FIXTURES / "metadata.json").read_text())
SNAPSHOT_ID = METADATA["snapshotId"]
ACCOUNT = "123456789012"
REGION = "us-west-2"
BUCKET = "vllm-coldstart-models-example"
NODE_ROLE = "KarpenterNodeRole-vllm-coldstart"

Manifests = dict[str, list[dict[str, Any]]]  # chart id -> objects


def published_fixture(**changes: Any) -> PublishedSnapshot:
    """The snapshot described by fixtures/metadata.json, as read_published returns it."""
    values: dict[str, Any] = {
        "snapshot_id": SNAPSHOT_ID,
        "source": "/vllm-coldstart/snapshot-id",
        "bottlerocket_version": METADATA["bottlerocketVersion"],
        "kubernetes_version": METADATA["kubernetesVersion"],
        "images": tuple(PublishedImage(i["reference"], i["digest"], i["pinned"]) for i in METADATA["images"]),
        "platforms": tuple(METADATA["platforms"]),
        "created_at": METADATA["createdAt"],
        "execution_arn": METADATA["executionArn"],
        "metadata_source": "/vllm-coldstart/snapshot-id/metadata (version 1)",
    }
    values.update(changes)
    return PublishedSnapshot(**values)


def synth(config: AppConfig, published: PublishedSnapshot | None, **kwargs: Any) -> tuple[Manifests, Any]:
    """Build the charts in a fresh cdk8s App; returns ({chart id: objects}, ChartSet)."""
    import cdk8s

    from k8s_charts.charts import build_charts

    kwargs.setdefault("node_role_name", NODE_ROLE)
    kwargs.setdefault("model_bucket", BUCKET)
    kwargs.setdefault("account", ACCOUNT)
    kwargs.setdefault("region", REGION)
    app = cdk8s.App()
    built = build_charts(app, config, published, **kwargs)
    return {chart.node.id: list(chart.to_json()) for chart in built.charts}, built


def find(manifests: Manifests, kind: str) -> dict[str, Any]:
    """The one object of ``kind`` in the GPU-node and vLLM charts (the chat chart has its own tests)."""
    matches = [o for chart, objs in manifests.items() if chart != CHAT_CHART for o in objs if o["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def vllm_container(manifests: Manifests) -> dict[str, Any]:
    return next(c for c in find(manifests, "Deployment")["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm")


def data_volume(manifests: Manifests) -> dict[str, Any]:
    mappings = find(manifests, "EC2NodeClass")["spec"]["blockDeviceMappings"]
    return next(m["ebs"] for m in mappings if m["deviceName"] == "/dev/xvdb")
