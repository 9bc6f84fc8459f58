"""Log-line parsing against the formats vLLM, uvicorn, the Run:ai streamer and kubectl print."""

from datetime import UTC, datetime

import pytest

from coldstart.report.vllm_log import parse_lines, parse_vllm_log

REF = datetime(2025, 6, 12, 10, 30, tzinfo=UTC)


def one(text: str, reference: datetime = REF):
    [line] = parse_lines(text, reference=reference)
    return line


def test_current_vllm_prefix_with_process_prefixes_and_colour():
    # Given a v0.11 engine-core worker line as a TTY shows it (ANSI colour, nested process prefixes)
    raw = ("\x1b[1;36m(EngineCore_DP0 pid=212)\x1b[0;0m \x1b[1;36m(Worker_TP0 pid=230)\x1b[0;0m "
           "\x1b[32mINFO\x1b[0m \x1b[90m06-12 10:31:29\x1b[0m \x1b[90m[gpu_model_runner.py:2653]\x1b[0m "
           "Model loading took 3.8815 GiB and 5.912345 seconds")
    line = one(raw)
    assert line.process == "Worker_TP0"
    assert line.level == "INFO"
    assert line.message == "Model loading took 3.8815 GiB and 5.912345 seconds"
    assert line.ts == datetime(2025, 6, 12, 10, 31, 29, tzinfo=UTC)
    assert line.ts_exact


def test_older_prefix_without_bracket_and_debug_relative_path():
    old = one("INFO 06-12 10:31:52 model_runner.py:1234] Graph capturing finished in 12 secs.")
    assert old.message.startswith("Graph capturing finished")
    rel = one("DEBUG 06-12 10:31:53 [v1/worker/.../gpu_model_runner.py:88] Starting to load model x...")
    assert rel.message == "Starting to load model x..."
    assert rel.ts == datetime(2025, 6, 12, 10, 31, 53, tzinfo=UTC)


def test_kubectl_timestamp_wins_over_vllm_time():
    line = one("2025-06-12T10:31:29.123456789Z (APIServer pid=1) INFO 06-12 10:31:28 [api_server.py:1] vLLM API server version 0.11.0")
    assert line.ts == datetime(2025, 6, 12, 10, 31, 29, 123456, tzinfo=UTC)
    assert line.process == "APIServer"


def test_line_without_time_inherits_previous_and_is_marked_inexact():
    a, b = parse_lines("INFO 06-12 10:32:39 [api_server.py:1912] Starting vLLM API server 0 on http://0.0.0.0:8000\n"
                       "(APIServer pid=1) INFO:     Application startup complete.", reference=REF)
    assert b.message == "Application startup complete."
    assert b.ts == a.ts and not b.ts_exact


def test_year_inferred_across_new_year():
    # A pod created on 31 December whose vLLM lines are already in January
    ref = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    assert one("INFO 01-01 00:01:02 [core.py:1] x", ref).ts == datetime(2026, 1, 1, 0, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("text,size_gib,secs,device", [
    ("[RunAI Streamer] Overall time to stream 3.9 GiB of all files: 5.2s, 750.1 MiB/s", 3.9, 5.2, None),
    ("[2026-02-15 05:16:38] INFO file_streamer.py:66: [RunAI Streamer] Overall time to stream 34.3 GiB of all "
     "files to cuda:0: 28.52s, 1.2 GiB/s", 34.3, 28.52, "cuda:0"),
    ("[RunAI Streamer] Overall time to stream 3.9 GiB: 1.24s, 3.1 GiB/s", 3.9, 1.24, None),
])
def test_runai_streamer_variants(text, size_gib, secs, device):
    log = parse_vllm_log(text, reference=REF)
    s = log.streamer()
    assert s is not None
    assert s["bytes"] == pytest.approx(size_gib * 2**30)
    assert s["seconds"] == secs
    assert (log.first("runai").groups.get("device")) == device


@pytest.mark.parametrize("message,marker,secs", [
    ("Model loading took 3.8815 GiB and 5.912345 seconds", "model_loaded", 5.912345),
    ("Model loading took 3.88 GiB memory and 23.882125 seconds", "model_loaded", 23.882125),
    ("Loading weights took 5.31 seconds", "weights_loaded", 5.31),
    ("torch.compile takes 57.90 s in total", "compile_total", 57.90),
    ("Dynamo bytecode transform time: 7.02 s", "dynamo", 7.02),
    ("Compiling a graph for dynamic shape takes 50.88 s", "compile_graph", 50.88),
    ("Compiling a graph for compile range (1, 8192) takes 12.10 s", "compile_graph", 12.10),
    ("Directly load the compiled graph(s) for dynamic shape from the cache, took 4.215 s", "compile_cache_hit", 4.215),
    ("Directly load the compiled graph(s) for compile range (1, 2048) from the cache, took 1.500 s", "compile_cache_hit", 1.5),
    ("Graph capturing finished in 3 secs, took 0.48 GiB", "graph_capture", 3),
    ("init engine (profile, create kv cache, warmup model) took 64.38 seconds", "engine_init", 64.38),
    ("init engine (profile, create kv cache, warmup model) took 22.52 s (compilation: 8.94 s)", "engine_init", 22.52),
])
def test_duration_markers(message, marker, secs):
    log = parse_vllm_log(f"INFO 06-12 10:31:00 [x.py:1] {message}", reference=REF)
    assert log.first(marker) is not None, marker
    assert log.first(marker).secs == pytest.approx(secs)


@pytest.mark.parametrize("message", [
    "Starting vLLM API server 0 on http://0.0.0.0:8000",
    "Starting vLLM API server on http://0.0.0.0:8000",
])
def test_api_server_start_both_forms(message):
    assert parse_vllm_log(f"INFO 06-12 10:31:00 [api_server.py:1] {message}", reference=REF).first("api_start")


def test_models_ok_needs_a_200_on_v1_models():
    text = ('INFO:     10.0.0.1:1 - "GET /v1/models HTTP/1.1" 503 Service Unavailable\n'
            'INFO:     10.0.0.1:2 - "GET /health HTTP/1.1" 200 OK\n')
    assert parse_vllm_log(text, reference=REF).first("models_ok") is None
    ok = parse_vllm_log('INFO:     10.0.0.1:3 - "GET /v1/models HTTP/1.1" 200 OK', reference=REF)
    assert ok.first("models_ok") is not None


def test_enforce_eager_read_from_engine_config():
    text = "INFO 06-12 10:31:00 [core.py:77] Initializing a V1 LLM engine (v0.11.0) with config: model='m', enforce_eager=True, seed=0"
    log = parse_vllm_log(text, reference=REF)
    assert log.enforce_eager and log.version == "v0.11.0"
