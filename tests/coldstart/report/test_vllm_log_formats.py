"""vLLM log formats across releases: v0.34.0's lines (the project's default image) and the older
ones (v0.11.0 and before), which must keep giving the same results.

The v0.34.0 strings are quoted from vllm-project/vllm v0.34.0 with their file:line; the fixture
tests/coldstart/report/fixtures/v034_cold/vllm.log is built line by line from those format strings.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coldstart.report.vllm_log import parse_lines, parse_vllm_log

FIXTURES = Path(__file__).parent / "fixtures"
BASELINE = FIXTURES / "pre_v034_baseline.json"
OLD_LOGS = ("warm/vllm.log", "cold_pull/vllm.log", "crash_loop/vllm.log", "crash_loop/vllm.previous.log",
            "missing_phases/vllm.log")
OLD_BUNDLES = ("warm", "cold_pull", "crash_loop", "missing_phases")
REF = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def log_summary(text: str, reference: datetime) -> dict:
    """Every marker hit of a log: line number, time, whether the time is the line's own, groups."""
    log = parse_vllm_log(text, reference=reference)
    return {
        "version": log.version,
        "kubectlTimestamps": log.kubectl_timestamps,
        "hits": {name: [[h.line.number, h.line.ts.isoformat() if h.line.ts else None, h.line.ts_exact,
                         h.line.process, h.groups] for h in hits]
                 for name, hits in sorted(log.hits.items())},
    }


def timeline_summary(t) -> dict:
    return {
        "outcome": t.outcome,
        "vllmVersion": t.vllm_version,
        "readyAt": t.ready_at.isoformat() if t.ready_at else None,
        "readySource": t.ready_source,
        "phases": [[p.key, p.seconds, p.status, p.source, p.detail, p.at_least] for p in t.phases],
        "weights": t.weights,
        "compile": t.compile,
        "milestones": [[m.name, m.at.isoformat(), m.source, m.exact] for m in t.milestones],
        "stoppedIn": t.restarts.previous_attempt_stopped_in,
        "notes": t.notes,
        "problems": t.problems,
    }


def _created(rel: str) -> datetime:
    pod = json.loads((FIXTURES / rel).parent.joinpath("pod.json").read_text())
    return datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def _jsonable(value):
    return json.loads(json.dumps(value))


# --- the older formats keep their results ----------------------------------------------------------


@pytest.mark.parametrize("rel", OLD_LOGS)
def test_older_logs_parse_exactly_as_before(rel):
    # Given a log in the v0.11.0-era formats, and what the parser found in it before v0.34.0 support
    baseline = json.loads(BASELINE.read_text())["logs"][rel]
    # When it is parsed now, Then every hit (line, time, process, groups) is the same, and nothing new
    assert _jsonable(log_summary((FIXTURES / rel).read_text(), _created(rel))) == baseline


@pytest.mark.parametrize("bundle", OLD_BUNDLES)
def test_older_bundles_give_the_same_timeline(timeline_of, bundle):
    baseline = json.loads(BASELINE.read_text())["timelines"][bundle]
    assert _jsonable(timeline_summary(timeline_of(bundle))) == baseline


# --- the v0.34.0 fixture ---------------------------------------------------------------------------


def _ts(hms: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-02T{hms}+00:00")


@pytest.fixture(scope="module")
def v034():
    return parse_vllm_log((FIXTURES / "v034_cold" / "vllm.log").read_text(), reference=REF)


# marker -> (line number in the file, kubectl time, seconds or None); header comment = lines 1-2
V034_HITS = {
    "api_version": (5, "10:01:02.415", None),  # the logo's "version" line
    "engine_config": (9, "10:01:18.207", None),
    "load_start": (10, "10:01:24.310", None),
    "model_init": (11, "10:01:24.722", 0.411873),
    "runai": (12, "10:01:29.951", 5.03),
    "model_loaded": (13, "10:01:30.123", 5.812402),
    "compile_start": (14, "10:01:30.560", None),
    "compile_cache_dir": (15, "10:01:37.700", None),
    "dynamo": (16, "10:01:37.702", 7.12),
    "compile_graph": (17, "10:02:26.300", 48.61),
    "compile_aot_saved": (18, "10:02:26.671", None),
    "compile_total": (19, "10:02:26.680", 56.12),
    "compile_warmup": (20, "10:02:28.520", 1.84),
    "graph_capture": (21, "10:02:32.100", 3.0),
    "engine_init": (22, "10:02:33.020", 62.90),
    "api_start": (24, "10:02:35.902", None),
    "app_startup": (27, "10:02:36.204", None),
    "models_ok": (29, "10:02:58.117", None),
}


def test_v034_every_milestone_found_once_at_its_line_and_time(v034):
    assert set(v034.hits) == set(V034_HITS)
    for marker, (number, hms, secs) in V034_HITS.items():
        [hit] = v034.hits[marker]
        assert (hit.line.number, hit.line.ts, hit.line.ts_exact) == (number, _ts(hms), True), marker
        if secs is not None:
            assert hit.secs == pytest.approx(secs), marker


def test_v034_version_model_and_groups(v034):
    assert v034.kubectl_timestamps
    assert v034.version == "v0.34.0"  # from the engine config line
    assert v034.first("api_version").groups == {
        "version": "0.34.0", "model": "s3://vllm-coldstart-models/models/mistral-7b-instruct-v0.2-awq"}
    assert v034.model == "s3://vllm-coldstart-models/models/mistral-7b-instruct-v0.2-awq"
    assert v034.first("api_start").groups["addr"] == "http://0.0.0.0:8000"
    assert v034.first("engine_init").groups["compile"] == "56.12"
    assert v034.first("compile_aot_saved").groups["path"].endswith("/rank_0_0/model")
    assert v034.first("runai").groups["device"] == "cuda:0"
    # the v0.34 prefix names the process on every line; the streamer's own line has none
    assert v034.first("model_loaded").line.process == "EngineCore"
    assert v034.first("api_start").line.process == "APIServer"
    assert (v034.first("runai").line.process, v034.first("runai").line.level) == ("", "INFO")


def test_v034_timeline(timeline_of):
    t = timeline_of("v034_cold")
    assert t.outcome == "ready" and t.vllm_version == "v0.34.0"
    assert t.phase("node_ready").seconds == 38.0  # as warm/, moved in time
    assert t.phase("container_start").seconds == 14.0  # Started 10:00:52
    # 10:01:30.123 "Model loading took ... 5.812402 seconds" - 5.812402 - Started 10:00:52
    assert t.phase("api_init").seconds == pytest.approx(32.310598)
    assert t.phase("weights").seconds == pytest.approx(5.812402)
    assert t.phase("torch_compile").seconds == pytest.approx(56.12)  # "torch.compile took 56.12 s in total"
    assert t.phase("torch_compile").source == "'torch.compile took ... in total' line"
    assert t.phase("cuda_graphs").seconds == 3.0
    # first /v1/models 200 at 10:02:58.117 - weights end 10:01:30.123 - 56.12 - 3
    assert t.phase("engine_rest").seconds == pytest.approx(28.874)
    assert t.ready_source == "first GET /v1/models 200 in the log"
    assert t.total_s == pytest.approx(178.117)
    assert sum(p.seconds for p in t.phases) == pytest.approx(t.total_s)
    assert t.compile["cacheHit"] is False
    assert "compiled (no cache hit)" in t.phase("torch_compile").detail
    assert t.compile["aotPath"] == "/var/cache/vllm/torch_compile_cache/8d41c07a2e/rank_0_0/model"
    assert t.compile["warmupSeconds"] == 1.84 and t.compile["engineInitSeconds"] == 62.90
    assert t.weights["streamer"]["seconds"] == 5.03 and t.weights["gpuMemoryGiB"] == 3.88
    up = next(m for m in t.milestones if m.name == "API server up")
    assert up.at == _ts("10:02:36.204") and up.exact
    assert t.largest.key == "torch_compile" and not t.problems


# --- v0.34.0 variants the fixture does not show ---------------------------------------------------


def _bundle_with_log(log: str, *, ready: bool = True):
    from coldstart.report import build_timeline, load_bundle

    inputs = load_bundle(FIXTURES / "v034_cold")
    inputs.log = log
    if not ready:
        conds = inputs.pod["status"]["conditions"]
        inputs.pod["status"]["conditions"] = [c for c in conds if c["type"] not in ("Ready", "ContainersReady")]
    return build_timeline(inputs)


def _v034_log(*, compile_lines: list[str], stop_after: str | None = None) -> str:
    """The fixture's log with its compile section (the lines from 'Starting torch.compile' to the
    total) replaced, optionally cut after the first line containing ``stop_after``."""
    lines = (FIXTURES / "v034_cold" / "vllm.log").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.endswith("Starting torch.compile"))
    end = next(i for i, ln in enumerate(lines) if "s in total" in ln)
    lines[start:end + 1] = compile_lines
    if stop_after is not None:
        lines = lines[: next(i for i, ln in enumerate(lines) if stop_after in ln) + 1]
    return "\n".join(lines) + "\n"


E = "(EngineCore pid=212) INFO 12-02 {hms} [{src}] {msg}"


def _eng(ts: str, src: str, msg: str) -> str:
    return f"2026-12-02T{ts}000000Z " + E.format(hms=ts[:8], src=src, msg=msg)


def test_v034_compile_cache_hit_from_the_aot_artifact():
    # Given a start whose AOT artifact is on the compile cache: no start line, no Dynamo, then the total
    log = _v034_log(compile_lines=[
        _eng("10:01:33.402", "decorators.py:326",
             "Directly load AOT compilation from path /var/cache/vllm/torch_compile_cache/8d41c07a2e/rank_0_0/model"),
        _eng("10:01:33.410", "monitor.py:62", "torch.compile took 3.28 s in total"),
    ])
    t = _bundle_with_log(log)
    assert t.phase("torch_compile").seconds == pytest.approx(3.28)
    assert t.compile["cacheHit"] is True
    assert t.phase("torch_compile").detail.startswith("loaded from the compile cache (AOT artifact)")
    assert t.compile["aotPath"].endswith("/rank_0_0/model")


def test_v034_compile_without_aot_counts_the_warmup_in_the_total():
    log = _v034_log(compile_lines=[
        _eng("10:01:30.560", "monitor.py:40", "Starting torch.compile"),
        _eng("10:02:31.010", "monitor.py:62",
             "torch.compile and initial profiling/warmup run together took 60.45 s in total"),
    ])
    t = _bundle_with_log(log)
    assert t.phase("torch_compile").seconds == pytest.approx(60.45)
    assert "includes the initial profiling/warm-up run" in t.phase("torch_compile").detail
    assert t.phase("torch_compile").source == \
        "'torch.compile and initial profiling/warmup run together took ... in total' line"


def test_v034_attempt_stopped_while_loading_weights():
    # Given a pod still starting whose log ends at "Loading model from scratch..."
    log = _v034_log(compile_lines=[], stop_after="Loading model from scratch")
    t = _bundle_with_log(log, ready=False)
    assert t.outcome == "starting"
    # vLLM API init ends at that line: 10:01:24.310 - Started 10:00:52
    assert t.phase("api_init").seconds == pytest.approx(32.31)
    assert "Loading model from scratch..." in t.phase("api_init").source
    assert t.phase("weights").status == "in_progress"


@pytest.mark.parametrize("message,marker,groups", [
    ("vLLM server version 0.34.0, serving model mistralai/Mistral-7B-v0.1", "api_version",
     {"version": "0.34.0", "model": "mistralai/Mistral-7B-v0.1"}),
    ("Starting vLLM server on unix:/tmp/vllm.sock", "api_start", {"addr": "unix:/tmp/vllm.sock"}),
    ("[Qwen2VisionTransformer] torch.compile took 12.50 s in total", "compile_total",
     {"tag": "Qwen2VisionTransformer", "secs": "12.50"}),
    ("[Qwen2VisionTransformer] Starting torch.compile", "compile_start", {"tag": "Qwen2VisionTransformer"}),
    ("[Qwen2VisionTransformer] Initial profiling/warmup run took 0.91 s", "compile_warmup",
     {"tag": "Qwen2VisionTransformer", "secs": "0.91"}),
    ("init engine (profile, create kv cache, warmup model) took 80.12 s (compilation: 41.30 s \u2014 "
     "language_model: 28.80 s, encoder: 12.50 s)", "engine_init", {"secs": "80.12", "compile": "41.30"}),
    ("init engine (profile, create kv cache, warmup model) took 18.02 s", "engine_init", {"secs": "18.02"}),
    ("Directly load the compiled graph(s) for compile range (1, 2048) from the cache, took 1.204 s",
     "compile_cache_hit", {"what": "compile range (1, 2048)", "secs": "1.204"}),
])
def test_v034_message_forms(message, marker, groups):
    log = parse_vllm_log(f"(EngineCore pid=212) INFO 12-02 10:01:00 [x.py:1] {message}", reference=REF)
    assert log.first(marker) is not None, marker
    assert log.first(marker).groups == groups


def test_v034_unable_to_save_is_not_a_saved_artifact():
    text = ("(EngineCore pid=212) WARNING 12-02 10:01:00 [decorators.py:758] unable to save AOT compiled "
            "function to /c/model: disk full")
    assert parse_vllm_log(text, reference=REF).first("compile_aot_saved") is None


def _logo(proc_model: str = "APIServer", colour: bool = False) -> str:
    w, o, b, r = ("\x1b[1m", "\x1b[93m", "\x1b[94m", "\x1b[0m") if colour else ("", "", "", "")
    pre = "(APIServer pid=1) INFO 12-02 10:01:02 [startup.py:38] "
    body = [
        "",
        f"       {w}█     █     █▄   ▄█{r}",
        f" {o}▄▄{r} {b}▄█{r} {w}█     █     █ ▀▄▀ █{r}  version {w}0.34.0{r}",
        f"  {o}█{r}{b}▄█▀{r} {w}█     █     █     █{r}  model   {w}m/x{r}",
        f"   {b}▀▀{r}  {w}▀▀▀▀▀ ▀▀▀▀▀ ▀     ▀{r}",
        "",
    ]
    lines = [pre + part for part in body]
    lines[3] = lines[3].replace("(APIServer pid=1)", f"({proc_model} pid=1)")
    return "\r\n".join(lines) + "\n"


@pytest.mark.parametrize("colour", [False, True])
def test_v034_logo_gives_version_and_model(colour):
    log = parse_vllm_log(_logo(colour=colour), reference=REF)
    [hit] = log.hits["api_version"]
    assert hit.groups == {"version": "0.34.0", "model": "m/x"} and hit.line.number == 3
    assert hit.line.ts == datetime(2026, 12, 2, 10, 1, 2, tzinfo=UTC)


def test_v034_logo_needs_its_model_line_from_the_same_process():
    assert parse_vllm_log(_logo(proc_model="EngineCore"), reference=REF).first("api_version") is None
    version_only = _logo().splitlines()[2]  # "... version 0.34.0" without the model line after it
    assert parse_vllm_log(version_only, reference=REF).first("api_version") is None


def test_v034_blank_logo_line_with_trailing_space_stripped_keeps_its_time():
    line = one_line("(APIServer pid=1) INFO 12-02 10:01:02 [startup.py:38]")
    assert (line.message, line.level, line.process) == ("", "INFO", "APIServer")
    assert line.ts == datetime(2026, 12, 2, 10, 1, 2, tzinfo=UTC) and line.ts_exact


def test_runai_017_stderr_line_without_kubectl_timestamps():
    text = ("2026-12-02 10:01:29,951 [INFO] [RunAI Streamer] Overall time to stream 3.9 GiB of all files "
            "to cuda:0: 5.03s, 793.9 MiB/s")
    log = parse_vllm_log(text, reference=REF)
    hit = log.first("runai")
    assert hit.line.ts == datetime(2026, 12, 2, 10, 1, 29, 951000, tzinfo=UTC) and hit.line.ts_exact
    assert hit.line.level == "INFO" and hit.line.message.startswith("[RunAI Streamer]")
    assert log.streamer()["bytes"] == pytest.approx(3.9 * 2**30) and log.streamer()["seconds"] == 5.03


def one_line(text: str):
    [line] = parse_lines(text, reference=REF)
    return line
