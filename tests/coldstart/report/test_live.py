"""The live collector, with a fake kubectl (no cluster here), and the bundle round trip."""

import json

import pytest

from coldstart.report import ReportError, RunResult, build_timeline, collect_live, load_bundle, save_bundle, to_json


class FakeKubectl:
    """Answers the commands collect_live runs from a recorded bundle; records every call."""

    def __init__(self, bundle, *, nodeclaims_missing=False, fail_on=None):
        self.dir = bundle
        self.calls: list[list[str]] = []
        self.nodeclaims_missing = nodeclaims_missing
        self.fail_on = fail_on

    def __call__(self, args):
        args = list(args)
        self.calls.append(args)
        rest = args[1:]
        if rest[:1] == ["--context"]:
            rest = rest[2:]
        verb, args = rest[0], ["kubectl", *rest]
        if self.fail_on and self.fail_on in args:
            return RunResult(1, "", 'Error from server (NotFound): pods "gone" not found\n')
        if verb == "get" and args[2] == "pod":
            return RunResult(0, (self.dir / "pod.json").read_text(), "")
        if verb == "get" and args[2] == "events":
            return RunResult(0, (self.dir / "events.json").read_text(), "")
        if verb == "get" and args[2] == "ec2nodeclasses":
            path = self.dir / "ec2nodeclasses.json"
            return RunResult(0, path.read_text(), "") if path.exists() else RunResult(1, "", "no ec2nodeclasses\n")
        if verb == "get" and args[2] == "nodeclaims":
            if self.nodeclaims_missing:
                return RunResult(1, "", 'error: the server doesn\'t have a resource type "nodeclaims"\n')
            return RunResult(0, (self.dir / "nodeclaims.json").read_text(), "")
        if verb == "logs":
            name = "vllm.previous.log" if "--previous" in args else "vllm.log"
            path = self.dir / name
            return RunResult(0, path.read_text(), "") if path.exists() else RunResult(1, "", "previous terminated container not found")
        raise AssertionError(f"unexpected command {args}")


def test_collect_live_reads_pod_events_nodeclaims_and_log(fixtures_dir):
    fake = FakeKubectl(fixtures_dir / "cold_pull")
    inputs = collect_live("vllm-6f7c9d8b5-m4hzd", "vllm", runner=fake, context="prod")
    assert fake.calls[0] == ["kubectl", "--context", "prod", "get", "pod", "vllm-6f7c9d8b5-m4hzd", "-n", "vllm", "-o", "json"]
    assert ["--field-selector", "involvedObject.name=vllm-6f7c9d8b5-m4hzd"] == fake.calls[1][7:9]
    assert fake.calls[3][3:] == ["logs", "vllm-6f7c9d8b5-m4hzd", "-n", "vllm", "-c", "vllm", "--timestamps"]
    assert not any("--previous" in c for c in fake.calls)  # no restart, no previous log asked for
    # The same report as from the saved bundle
    assert to_json(build_timeline(inputs)) == to_json(build_timeline(load_bundle(fixtures_dir / "cold_pull")))


def test_collect_live_fetches_previous_log_after_restarts(fixtures_dir):
    fake = FakeKubectl(fixtures_dir / "crash_loop")
    inputs = collect_live("vllm-6f7c9d8b5-t7wnb", "vllm", runner=fake)
    assert any("--previous" in c for c in fake.calls)
    assert inputs.previous_log is not None
    assert build_timeline(inputs).restarts.previous_attempt_stopped_in == "torch.compile"


def test_cluster_without_karpenter_is_not_an_error(fixtures_dir):
    inputs = collect_live("vllm-6f7c9d8b5-m4hzd", "vllm", runner=FakeKubectl(fixtures_dir / "cold_pull", nodeclaims_missing=True))
    t = build_timeline(inputs)
    assert inputs.nodeclaims == [] and t.nodeclaim is None
    assert t.phase("node_ready").seconds == 41.0  # falls back to the PodScheduled condition


def test_kubectl_failure_names_the_command_and_the_error(fixtures_dir):
    fake = FakeKubectl(fixtures_dir / "warm", fail_on="pod")
    with pytest.raises(ReportError, match=r"`kubectl get pod gone -n vllm -o json` failed \(exit 1\): .*NotFound"):
        collect_live("gone", "vllm", runner=fake)


def test_missing_kubectl_is_a_clear_error():
    with pytest.raises(ReportError, match="kubectl-does-not-exist: not found on PATH; install kubectl"):
        collect_live("p", "vllm", kubectl="kubectl-does-not-exist")


def test_non_json_output_is_reported():
    def runner(args):
        return RunResult(0, "<html>proxy error</html>", "")

    with pytest.raises(ReportError, match="not JSON"):
        collect_live("p", "vllm", runner=runner)


def test_saved_bundle_reads_back_the_same(fixtures_dir, tmp_path):
    inputs = collect_live("vllm-6f7c9d8b5-t7wnb", "vllm", runner=FakeKubectl(fixtures_dir / "crash_loop"))
    written = save_bundle(inputs, tmp_path / "bundle")
    assert {p.name for p in written} == {"pod.json", "events.json", "nodeclaims.json", "vllm.log", "vllm.previous.log"}
    again = load_bundle(tmp_path / "bundle")
    assert to_json(build_timeline(again)) == to_json(build_timeline(inputs))
    assert json.loads((tmp_path / "bundle" / "events.json").read_text())["kind"] == "List"
