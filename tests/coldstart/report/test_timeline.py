"""The timeline built from recorded bundles: one scenario per fixture directory.

Expected numbers are worked out by hand from the fixture files (event times, conditions, log lines);
each comment says where a number comes from.
"""

import copy
import json

import pytest

from coldstart.report import build_timeline, load_bundle
from coldstart.report.inputs import ColdStartInputs


def seconds(t, key):
    return t.phase(key).seconds


def test_warm_start_from_the_image_cache(timeline_of):
    t = timeline_of("warm")
    assert t.outcome == "ready"
    assert (t.nodeclaim, t.instance_type, t.capacity_type) == ("gpu-7xk2p", "g4dn.xlarge", "spot")
    assert seconds(t, "node_ready") == 38.0  # NodeClaim Initialized 10:30:38 - pod created 10:30:00
    assert seconds(t, "image") == 0.0  # "already present on machine"; another pod's 4 min pull is ignored
    assert "already present on machine" in t.phase("image").detail
    assert seconds(t, "container_start") == 14.0  # Started 10:30:52 - node ready 10:30:38 - 0
    assert seconds(t, "api_init") == pytest.approx(31.087655)  # 10:31:29 - 5.912345 s - 10:30:52
    assert seconds(t, "weights") == pytest.approx(5.912345)  # "Model loading took 3.8815 GiB and 5.912345 seconds"
    assert seconds(t, "torch_compile") == pytest.approx(57.90)  # "torch.compile takes 57.90 s in total"
    assert seconds(t, "cuda_graphs") == 3.0  # "Graph capturing finished in 3 secs"
    assert seconds(t, "engine_rest") == pytest.approx(23.1)  # Ready 10:32:53 - 10:31:29 - 57.9 - 3
    assert t.total_s == 173.0
    # uvicorn's access line has no time of its own here (no --timestamps), so the Ready condition is used
    assert t.ready_source == "pod Ready condition"
    assert t.largest.key == "torch_compile"
    assert t.weights["streamer"]["seconds"] == 5.2
    assert t.compile["cacheHit"] is False and t.compile["cacheDir"].startswith("/var/cache/vllm/")
    assert not t.problems
    assert any("initialDelaySeconds (120) held readiness back" in n for n in t.notes)


@pytest.mark.parametrize("name", ["warm", "cold_pull"])
def test_phases_tile_the_start(timeline_of, name):
    t = timeline_of(name)
    assert all(p.status == "measured" for p in t.phases)
    assert sum(p.seconds for p in t.phases) == pytest.approx(t.total_s)
    assert t.unattributed_s is None


def test_cold_pull_names_the_image_as_largest(timeline_of):
    t = timeline_of("cold_pull")
    assert seconds(t, "image") == pytest.approx(206.617)  # "in 3m26.617s (3m26.617s including waiting)"
    assert "9.7 GiB" in t.phase("image").detail
    assert seconds(t, "container_start") == pytest.approx(12.383)  # 08:04:20 - 08:00:41 - 206.617
    assert seconds(t, "engine_rest") == pytest.approx(21.543)  # 08:06:21.097 - 08:04:55.204 - 61.35 - 3
    assert t.ready_source == "first GET /v1/models 200 in the log"  # timestamped by kubectl
    assert t.total_s == pytest.approx(381.097)
    assert t.largest.key == "image"
    assert any("pulled from the registry" in p for p in t.problems)


def test_crash_loop_killed_by_startup_probe(timeline_of):
    t = timeline_of("crash_loop")
    assert t.outcome == "crash_loop"
    assert t.ready_at is None and t.total_s is None
    assert t.total_at_least_s == 871.0  # last attempt finished 09:14:31, pod created 09:00:00
    assert (t.restarts.count, t.restarts.startup_probe_kills, t.restarts.startup_probe_failures) == (2, 3, 45)
    assert t.restarts.last_termination["exitCode"] == 137
    assert t.restarts.previous_attempt_stopped_in == "torch.compile"
    assert seconds(t, "restarts") == 558.0  # first Started 09:00:50 -> last attempt 09:10:08
    assert seconds(t, "api_init") == pytest.approx(204.913196)  # lazy loading: 6x the budget
    compile_phase = t.phase("torch_compile")
    assert compile_phase.status == "in_progress" and compile_phase.seconds is None
    assert compile_phase.at_least == pytest.approx(50.988)  # killed 09:14:31, weights done 09:13:40.012
    assert [t.phase(k).status for k in ("cuda_graphs", "engine_rest")] == ["not_reached", "not_reached"]
    # the recorded pod has 120 s + 10 s x 15: kubelet guarantees 120 + 10 x (15 - 1) = 260 s
    # (settings.probe_timing: the first probe may come up to one period after the delay)
    assert t.startup_probe.window_s == 260
    assert t.largest.key == "api_init"  # restarts repeat phases; they are not "the" phase to fix
    [problem] = [p for p in t.problems if "startup probe" in p]
    assert "3 time(s)" in problem and "260 s" in problem and "torch.compile" in problem


def test_missing_log_lines_stay_unknown(timeline_of):
    t = timeline_of("missing_phases")
    assert t.outcome == "ready"
    for key in ("api_init", "weights", "torch_compile", "engine_rest"):
        assert t.phase(key).status == "unknown" and t.phase(key).seconds is None, key
    assert seconds(t, "cuda_graphs") == 4.0
    assert seconds(t, "node_ready") == 2.0  # no NodeClaim saved: pod created -> PodScheduled
    assert "no NodeClaim" in t.phase("node_ready").detail
    assert t.total_s == pytest.approx(135.455)
    assert t.unattributed_s == pytest.approx(135.455 - 2 - 0 - 7 - 4)
    assert t.largest.key == "container_start"
    assert t.weights is None


def _warm_inputs(fixtures_dir) -> ColdStartInputs:
    return load_bundle(fixtures_dir / "warm")


def test_pod_still_starting_marks_the_phase_in_progress(fixtures_dir):
    # Given the warm pod seen mid-start: not Ready, the log cut right after "Starting to load model"
    inputs = _warm_inputs(fixtures_dir)
    pod = copy.deepcopy(inputs.pod)
    pod["status"]["conditions"] = [c for c in pod["status"]["conditions"] if c["type"] not in ("Ready", "ContainersReady")]
    lines = inputs.log.splitlines()
    cut = next(i for i, line in enumerate(lines) if "Starting to load model" in line)
    inputs = ColdStartInputs(pod=pod, container="vllm", events=inputs.events, nodeclaims=inputs.nodeclaims,
                             log="\n".join(lines[: cut + 1]))
    t = build_timeline(inputs)
    assert t.outcome == "starting"
    assert t.phase("api_init").seconds == 31.0  # 10:31:23 "Starting to load model" - 10:30:52
    weights = t.phase("weights")
    assert weights.status == "in_progress" and weights.seconds is None and weights.at_least == 0.0
    assert t.phase("torch_compile").status == "not_reached"


def test_enforce_eager_means_no_compile_and_no_graphs(fixtures_dir):
    inputs = _warm_inputs(fixtures_dir)
    inputs.log = "\n".join(
        line.replace("enforce_eager=False", "enforce_eager=True") for line in inputs.log.splitlines()
        if "torch.compile takes" not in line and "Graph capturing" not in line)
    t = build_timeline(inputs)
    assert seconds(t, "torch_compile") == 0.0 and seconds(t, "cuda_graphs") == 0.0
    assert "enforce_eager=True" in t.phase("torch_compile").detail
    assert seconds(t, "engine_rest") == pytest.approx(84.0)  # all of weights-loaded -> Ready


def test_no_log_and_no_events(fixtures_dir):
    pod = json.loads((fixtures_dir / "warm" / "pod.json").read_text())
    t = build_timeline(ColdStartInputs(pod=pod, container="vllm"))
    assert seconds(t, "node_ready") == 38.0  # PodScheduled condition alone
    assert t.phase("image").status == "unknown"
    assert all(t.phase(k).seconds is None for k in ("api_init", "weights", "torch_compile", "cuda_graphs", "engine_rest"))
    assert t.total_s == 173.0  # created -> Ready condition is still known
    assert any("no container log" in n for n in t.notes) and any("no events" in n for n in t.notes)


def test_events_of_an_earlier_pod_with_the_same_name_are_ignored(fixtures_dir):
    inputs = load_bundle(fixtures_dir / "warm")
    stale = copy.deepcopy(next(e for e in inputs.events if e["reason"] == "Pulled" and e["involvedObject"]["name"] == inputs.pod_name))
    stale["involvedObject"]["uid"] = "11111111-2222-4333-8444-555555555555"
    stale["message"] = 'Successfully pulled image "x" in 5m0s (5m0s including waiting). Image size: 1 bytes.'
    stale["firstTimestamp"] = "2025-06-12T09:00:00Z"
    inputs.events.insert(0, stale)
    assert build_timeline(inputs).phase("image").seconds == 0.0


def test_pending_pod_waits_for_its_node(fixtures_dir):
    pod = json.loads((fixtures_dir / "warm" / "pod.json").read_text())
    pod["spec"].pop("nodeName")
    pod["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                         "lastTransitionTime": "2025-06-12T10:30:00Z"}]}
    t = build_timeline(ColdStartInputs(pod=pod, container="vllm"))
    assert t.outcome == "starting" and t.total_s is None
    assert t.phase("node_ready").status == "in_progress"
    assert all(t.phase(k).status == "not_reached" for k in ("api_init", "weights", "torch_compile", "cuda_graphs", "engine_rest"))
