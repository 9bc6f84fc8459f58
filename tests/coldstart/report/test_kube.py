"""Kubernetes-side parsing: times, Go durations, kubelet Pulled messages, bundle loading errors."""

from datetime import UTC, datetime

import pytest

from coldstart.report import ReportError, load_bundle
from coldstart.report.kube import parse_go_duration, parse_pulled, parse_time


@pytest.mark.parametrize("text,seconds", [
    ("1m2.345s", 62.345), ("46.9444707s", 46.9444707), ("512ms", 0.512), ("1h2m3s", 3723.0), ("0s", 0.0),
])
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


def test_go_duration_rejects_garbage():
    assert parse_go_duration("1 minute") is None


def test_parse_time_nanoseconds_and_offsets():
    assert parse_time("2025-06-12T10:31:29.123456789Z") == datetime(2025, 6, 12, 10, 31, 29, 123456, tzinfo=UTC)
    assert parse_time("2025-06-12T12:31:29+02:00") == datetime(2025, 6, 12, 10, 31, 29, tzinfo=UTC)


def test_parse_time_names_the_field():
    with pytest.raises(ReportError, match="metadata.creationTimestamp: invalid value 'yesterday'"):
        parse_time("yesterday", field="metadata.creationTimestamp")


def test_pulled_messages_old_and_new_kubelets():
    present = parse_pulled('Container image "r/vllm:v1" already present on machine and can be accessed by the pod')
    assert present.present and present.seconds == 0.0
    new = parse_pulled('Successfully pulled image "r/vllm:v1" in 3m26.617s (3m30.1s including waiting). Image size: 10418763776 bytes.')
    assert not new.present and new.seconds == pytest.approx(210.1) and new.size_bytes == 10418763776
    old = parse_pulled('Successfully pulled image "r/vllm:v1" in 46.9444707s')
    assert old.seconds == pytest.approx(46.9444707) and old.size_bytes is None
    assert parse_pulled('Pulling image "r/vllm:v1"') is None


def test_bundle_without_pod_says_how_to_save_it(tmp_path):
    (tmp_path / "events.json").write_text('{"apiVersion": "v1", "kind": "List", "items": []}')
    with pytest.raises(ReportError, match="kubectl get pod <name> -n <namespace> -o json > pod.json"):
        load_bundle(tmp_path)


def test_bundle_with_two_pods_needs_a_name(tmp_path, fixtures_dir):
    import json

    pods = [json.loads((fixtures_dir / d / "pod.json").read_text()) for d in ("warm", "cold_pull")]
    (tmp_path / "pods.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    with pytest.raises(ReportError, match="holds 2 pods"):
        load_bundle(tmp_path)
    chosen = load_bundle(tmp_path, pod_name="vllm-6f7c9d8b5-m4hzd")
    assert chosen.pod_name == "vllm-6f7c9d8b5-m4hzd"
    with pytest.raises(ReportError, match="pod 'nope' is not in"):
        load_bundle(tmp_path, pod_name="nope")


def test_bundle_rejects_json_of_another_kind(tmp_path):
    (tmp_path / "x.json").write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}')
    with pytest.raises(ReportError, match="holds kind 'Service'"):
        load_bundle(tmp_path)


def test_bundle_unknown_container(fixtures_dir):
    with pytest.raises(ReportError, match="container 'sidecar' is not in pod"):
        load_bundle(fixtures_dir / "warm", container="sidecar")


def test_bundle_from_explicit_files(fixtures_dir):
    d = fixtures_dir / "warm"
    inputs = load_bundle([d / "pod.json", d / "vllm.log"])
    assert inputs.log is not None and inputs.events == [] and inputs.nodeclaims == []
