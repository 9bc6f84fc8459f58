"""The data volume's hydration and the compile-cache sync events, from the evidence only."""

import json

from coldstart.report import build_timeline, load_bundle, render_table, to_json
from coldstart.report.hydration import FSR, LAZY, NO_SNAPSHOT, RATE, UNKNOWN, hydration_of
from coldstart.report.timeline import parse_cache_events

NODECLAIM = {"metadata": {"name": "gpu-1", "labels": {"topology.kubernetes.io/zone": "us-west-2a"}},
             "spec": {"nodeClassRef": {"name": "gpu"}}}


def nodeclass(**ebs):
    return {"kind": "EC2NodeClass", "metadata": {"name": "gpu"}, "spec": {"blockDeviceMappings": [
        {"deviceName": "/dev/xvda", "ebs": {"volumeSize": "20Gi"}},
        {"deviceName": "/dev/xvdb", "ebs": {"volumeSize": "100Gi", **ebs}}]}}


def fsr(state="enabled", zone="us-west-2a", snap="snap-1"):
    return [{"SnapshotId": snap, "AvailabilityZone": zone, "State": state}]


def test_each_hydration_state_and_only_what_the_evidence_shows():
    assert hydration_of(NODECLAIM, [nodeclass(snapshotID="snap-1", volumeInitializationRate=300)], None).state == RATE
    assert hydration_of(NODECLAIM, [nodeclass(snapshotID="snap-1")], fsr()).state == FSR
    lazy = hydration_of(NODECLAIM, [nodeclass(snapshotID="snap-1")], [])
    assert lazy.state == LAZY and lazy.lazy is True and "us-west-2a" in lazy.detail
    assert hydration_of(NODECLAIM, [nodeclass(snapshotID="snap-1")], fsr(zone="us-west-2b")).state == LAZY
    assert hydration_of(NODECLAIM, [nodeclass(snapshotID="snap-1")], fsr(state="optimizing")).state == LAZY
    # Without the FSR evidence a volume without a rate is unknown, never called lazy.
    unknown = hydration_of(NODECLAIM, [nodeclass(snapshotID="snap-1")], None)
    assert unknown.state == UNKNOWN and unknown.lazy is None
    assert hydration_of(NODECLAIM, [], []).state == UNKNOWN
    assert hydration_of(None, [nodeclass(snapshotID="snap-1")], []).state == UNKNOWN
    assert hydration_of(NODECLAIM, [nodeclass()], None).state == NO_SNAPSHOT


def test_recorded_fixtures_without_nodeclass_say_nothing_about_hydration(timeline_of):
    t = timeline_of("warm")
    assert t.hydration is None and to_json(t)["hydration"] is None
    assert "Data volume" not in render_table(t)


def test_a_lazy_start_is_stated_in_the_table_and_json(fixtures_dir, tmp_path):
    for f in (fixtures_dir / "warm").iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    claim = json.loads((tmp_path / "nodeclaims.json").read_text())
    ref = claim["items"][0]["spec"]["nodeClassRef"]["name"]
    zone = claim["items"][0]["metadata"]["labels"]["topology.kubernetes.io/zone"]
    nc = nodeclass(snapshotID="snap-0123456789abcdef0")
    nc["metadata"]["name"] = ref
    (tmp_path / "ec2nodeclasses.json").write_text(json.dumps({"kind": "List", "items": [nc]}))
    (tmp_path / "fsr.json").write_text(json.dumps({"FastSnapshotRestores": []}))
    t = build_timeline(load_bundle(tmp_path))
    assert t.hydration.state == LAZY and zone in t.hydration.detail
    text = render_table(t)
    assert "Data volume: lazy: no initialization rate and no Fast Snapshot Restore" in text
    assert any("lazily loaded" in p for p in t.problems)
    assert to_json(t)["hydration"]["lazy"] is True


def test_compile_cache_events_with_and_without_kubectl_timestamps():
    text = "\n".join([
        "2026-12-02T10:00:52.100Z " + json.dumps({"event": "compile_cache_restore", "result": "hit", "seconds": 1.9,
                                                   "restored": 2, "bytes": 43_000_000}),
        "some other line",
        json.dumps({"event": "compile_cache_publish", "result": "ok", "seconds": 3.5, "published": 0}),
        json.dumps({"event": "something_else"}),
        "{not json",
    ])
    restore, publish = parse_cache_events(text)
    assert (restore.event, restore.result, restore.seconds) == ("compile_cache_restore", "hit", 1.9)
    assert restore.end.isoformat() == "2026-12-02T10:00:52.100000+00:00"
    assert restore.start.isoformat() == "2026-12-02T10:00:50.200000+00:00"
    assert publish.end is None and publish.start is None and publish.result == "ok"
