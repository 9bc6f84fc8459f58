"""Snapshot test of the default manifests (the files `python -m k8s_charts.synth` writes).

A diff here is a change in what gets applied to the cluster: review it, then regenerate with
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/k8s_charts/test_manifest_golden.py
The files hold no asset hashes or timestamps: only the config, the fixture snapshot and fixed
deployment values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cdk8s
import pytest
from chart_helpers import ACCOUNT, BUCKET, METADATA, NODE_ROLE, REGION, published_fixture

from k8s_charts.charts import build_charts
from settings.config import load_default_config

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FIXTURE_DIGEST = METADATA["images"][0]["digest"].removeprefix("sha256:")
CHAT_TAG = "git-0123456789ab"  # fixed: the default is the checkout's commit, new on every commit
SCENARIOS = {"published": published_fixture, "unpublished": lambda: None}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_default_manifests_match_the_golden_files(scenario: str, tmp_path: Path) -> None:
    app = cdk8s.App(outdir=str(tmp_path))
    build_charts(app, load_default_config(), SCENARIOS[scenario](), node_role_name=NODE_ROLE, model_bucket=BUCKET,
                 account=ACCOUNT, region=REGION, chat_image_tag=CHAT_TAG)
    app.synth()
    written = {p.name: p.read_text() for p in sorted(tmp_path.glob("*.k8s.yaml"))}
    assert sorted(written) == ["chat.k8s.yaml", "gpu-nodes.k8s.yaml", "vllm.k8s.yaml"]
    golden_dir = GOLDEN / scenario
    if UPDATE:
        golden_dir.mkdir(parents=True, exist_ok=True)
        for name, text in written.items():
            (golden_dir / name).write_text(text)
    for name, text in written.items():
        unpinned = text.replace(FIXTURE_DIGEST, "")  # the image digest is content, not noise
        assert not re.search(r"[0-9a-f]{32,}|-c8[0-9a-f]{6}\b", unpinned), "an asset hash or generated name leaked in"
        expected = (golden_dir / name).read_text()
        assert text == expected, f"{scenario}/{name} changed; review and regenerate with UPDATE_GOLDEN=1"
