"""update-manifests (the charts' synth against moto), deploy-apps (a stand-in kubectl) and report."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from coldstart.ops.doctor import generated_snapshot_ids
from settings import names
from settings.config import REPO_ROOT
from tests.coldstart.conftest import create_stack_with_outputs, pipeline_snapshot, publish

REPORT_BUNDLE = REPO_ROOT / "tests" / "coldstart" / "report" / "fixtures" / "warm"


@pytest.mark.synth
def test_update_manifests_writes_the_published_snapshot_into_the_nodeclass(aws, cli, tmp_path):
    snap = pipeline_snapshot()
    publish(snap)
    create_stack_with_outputs(names.STORAGE_STACK, {names.OUTPUT_BUCKET_NAME: "models-bucket"})

    result = cli("update-manifests", "--outdir", str(tmp_path / "dist"))

    assert result.exit_code == 0, result.output
    assert generated_snapshot_ids(tmp_path / "dist")[names.GPU_NODECLASS] == [snap]
    assert result.stdout.strip().splitlines()[-1] == f"EC2NodeClass snapshotID: {snap}"


@pytest.mark.synth
def test_update_manifests_synthesizes_this_commands_config_and_passes_synth_flags_on(cli, tmp_path):
    # the global -c is this command's typed config; --offline and --model-bucket are the synth's own flags
    result = cli("--region", "us-west-2", "-c", "gpuLimit=7", "update-manifests", "--outdir", str(tmp_path / "dist"),
                 "--offline", "--model-bucket", "my-models", "-c", "driftBudgetNodes=3")

    assert result.exit_code == 0, result.output
    pool = next(o for o in yaml.safe_load_all((tmp_path / "dist" / "gpu-nodes.k8s.yaml").read_text()) if o["kind"] == "NodePool")
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": 7}
    assert pool["spec"]["disruption"]["budgets"][0]["nodes"] == "3"
    assert "s3://my-models/" in (tmp_path / "dist" / "vllm.k8s.yaml").read_text()
    assert result.stdout.strip().splitlines()[-1] == "EC2NodeClass snapshotID: none (nodes start with an empty data volume)"


@pytest.mark.synth
def test_update_manifests_failure_is_a_non_zero_exit(aws, cli, tmp_path):
    result = cli("update-manifests", "--outdir", str(tmp_path / "dist"), "--snapshot-id", "snap-nothex")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "error: manifest synthesis failed (exit 2); see the message above"
    assert not (tmp_path / "dist").exists()


@pytest.fixture
def fake_kubectl(tmp_path, monkeypatch) -> Path:
    """A kubectl on PATH that records its arguments, plus a kubeconfig with a current context."""
    bin_dir, log = tmp_path / "bin", tmp_path / "kubectl.log"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: test\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return log


def test_deploy_apps_applies_every_generated_file(cli, tmp_path, fake_kubectl):
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in ("gpu-nodes.k8s.yaml", "vllm.k8s.yaml"):
        (dist / name).write_text("kind: ConfigMap\n")

    result = cli("deploy-apps", "--manifests-dir", str(dist))

    assert result.exit_code == 0, result.output
    calls = [json.loads(line) for line in fake_kubectl.read_text().splitlines()]
    assert calls[-1] == ["apply", "-f", str(dist / "gpu-nodes.k8s.yaml"), "-f", str(dist / "vllm.k8s.yaml")]


def test_deploy_apps_refuses_without_manifests(cli, tmp_path):
    result = cli("deploy-apps", "--manifests-dir", str(tmp_path))

    assert result.exit_code == 1 and "run make update-manifests first" in result.stderr


def test_deploy_apps_without_kubeconfig_is_one_line(cli, tmp_path):
    (tmp_path / "vllm.k8s.yaml").write_text("kind: ConfigMap\n")

    result = cli("deploy-apps", "--manifests-dir", str(tmp_path))

    assert result.exit_code == 1 and result.stderr.startswith("error: cannot deploy: ")


def test_report_renders_a_saved_bundle(cli):
    result = cli("report", str(REPORT_BUNDLE))

    assert result.exit_code == 0, result.output
    assert "Image pull" in result.stdout and "already present on machine" in result.stdout


def test_report_json_is_machine_readable(cli):
    result = cli("report", str(REPORT_BUNDLE), "--json")

    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), dict)


def test_report_on_a_missing_bundle_is_one_line(cli, tmp_path):
    result = cli("report", str(tmp_path / "nope"))

    assert result.exit_code == 1 and result.stderr.startswith("error: report: ") and len(result.stderr.splitlines()) == 1
