"""Parsing a vLLM pod log into the milestones of its start.

Every format below was read in vLLM's public source (repository vllm-project/vllm, through an
offline code index). ``@<commit>`` marks a file read whole at that commit. Strings without a commit
were found by exact-text search across the index's copies of that file, whose commits the search
does not report. Where the text changed between releases, every form is accepted. The image the
project deploys is v0.11.0. Which form of a changed line a given release prints was not pinned
down release by release offline; "older" and "newer" below are relative, and both are parsed.

Line prefix
  vllm/logger.py @43f45549: ``%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s``,
  datefmt ``%m-%d %H:%M:%S`` (no year, container local time = UTC in the vLLM image);
  vllm/logging_utils/formatter.py @00634b8a: ``[%(fileinfo)s:%(lineno)d]`` where fileinfo is the
  file name, or a shortened relative path (``v1/worker/gpu_model_runner.py``) at DEBUG level;
  ColoredFormatter wraps fields in ANSI colours when stdout is a TTY.
  Early releases printed ``INFO 06-12 10:31:52 module.py:123] ...`` (no ``[``; vllm/logger.py @00656a8e).
  Child processes prefix each line with ``(EngineCore_DP0 pid=123) `` and workers nest a second
  ``(Worker_TP0 pid=130) `` (vllm/utils ``_add_prefix``; cyan when colour is on).
  ``kubectl logs --timestamps`` adds an RFC 3339 timestamp in front of all of it: when present it
  is the clock used (it has a date, a zone and sub-second precision).

Messages (``%`` placeholders as in the source)
  vllm/entrypoints/openai/api_server.py: "vLLM API server version %s";
    "Starting vLLM API server %d on %s" (newer); "Starting vLLM API server on http%s://%s:%d" (older).
  vllm/v1/engine/core.py: "Initializing a V1 LLM engine (%s) with config: %s" (the config text
    carries ``enforce_eager=True`` when torch.compile and CUDA graphs are off);
    "init engine (profile, create kv cache, warmup model) took %.2f seconds" (older);
    "... took %.2f s (compilation: %.2f s)" / "... took %.2f s" (newer).
  vllm/v1/worker/gpu_model_runner.py: "Starting to load model %s...";
    "Model loading took %.4f GiB and %.6f seconds" (older);
    "Model loading took %s GiB memory and %.6f seconds" (newer, also vllm/v1/worker/gpu/model_runner.py);
    "Graph capturing finished in %.0f secs, took %.2f GiB".
  vllm/model_executor/model_loader/default_loader.py @00b5ad07: "Loading weights took %.2f seconds".
  vllm/compilation/backends.py @0041b00e: "Dynamo bytecode transform time: %.2f s";
    "... for compile range %s takes %.2f s" / "Compiling a graph for dynamic compile range takes";
    older releases: "Compiling a graph for dynamic shape takes %.2f s" / "... for shape %s takes";
    "Directly load the compiled graph(s) for dynamic shape from the cache, took %.3f s" (and the
    shape / compile-range variants) — a compile-cache hit;
    "Using cache directory: %s for vLLM's torch.compile".
  vllm/compilation/monitor.py @00158387: "torch.compile takes %.2f s in total".
  runai-model-streamer file_streamer.py (the loader behind ``--load-format runai_streamer``):
    "[RunAI Streamer] Overall time to stream %s of all files: %ss, %s/s" (sizes from
    humanize.naturalsize(binary=True), e.g. "3.9 GiB", "750.1 MiB"); newer releases add
    " to <device>" after "all files" and log through Python logging with their own
    ``[YYYY-MM-DD HH:MM:SS] INFO file_streamer.py:66:`` prefix.
  uvicorn (no timestamp of its own): "Started server process [%d]", "Application startup
    complete.", "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", and access lines
    ``10.0.1.7:52144 - "GET /v1/models HTTP/1.1" 200 OK``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from coldstart.report.kube import parse_time

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_K8S_TS = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) ")
_PROC_PREFIX = re.compile(r"^\((?P<proc>[A-Za-z][\w.-]*) pid=\d+\) ")
_VLLM = re.compile(
    r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<md>\d{2}-\d{2}) (?P<hms>\d{2}:\d{2}:\d{2})(?:[.,]\d+)? "
    r"\[?(?P<file>[^\s\]]+):(?P<lineno>\d+)\] (?P<msg>.*)$"
)
_RUNAI_PY = re.compile(
    r"^\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\] (?P<level>[A-Z]+) (?P<file>[^\s:]+):(?P<lineno>\d+): (?P<msg>.*)$"
)
_UVICORN = re.compile(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):\s+(?P<msg>.*)$")


@dataclass(frozen=True)
class LogLine:
    number: int  # 1-based line number in the log
    ts: datetime | None
    ts_exact: bool  # False when the time was inherited from an earlier line
    process: str  # "APIServer", "EngineCore_DP0", ... or "" for the main process
    level: str
    message: str


def _infer_year(month_day: str, hms: str, reference: datetime) -> datetime:
    """vLLM's timestamps have no year: take the one that puts the line nearest the reference."""
    best = None
    for year in (reference.year - 1, reference.year, reference.year + 1):
        try:
            cand = datetime.strptime(f"{year}-{month_day} {hms}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:  # 02-29 in a non-leap year
            continue
        if best is None or abs(cand - reference) < abs(best - reference):
            best = cand
    assert best is not None
    return best


def parse_lines(text: str, *, reference: datetime) -> list[LogLine]:
    """Split a pod log into lines with a UTC time each (inherited when the line has none)."""
    out: list[LogLine] = []
    last_ts: datetime | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _ANSI.sub("", raw).rstrip("\r")
        ts: datetime | None = None
        if m := _K8S_TS.match(line):
            ts = parse_time(m["ts"], field=f"log line {number}")
            line = line[m.end():]
        process = ""
        while m := _PROC_PREFIX.match(line):
            process = m["proc"]  # the innermost process is the one that logged
            line = line[m.end():]
        level, message = "", line
        if m := _VLLM.match(line):
            level, message = m["level"], m["msg"]
            if ts is None:
                ts = _infer_year(m["md"], m["hms"], reference)
        elif m := _RUNAI_PY.match(line):
            level, message = m["level"], m["msg"]
            if ts is None:
                ts = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        elif m := _UVICORN.match(line):
            level, message = m["level"], m["msg"]
        exact = ts is not None
        if ts is None:
            ts = last_ts
        else:
            last_ts = ts
        out.append(LogLine(number, ts, exact and ts is not None, process, level, message.strip()))
    return out


# --- markers ------------------------------------------------------------------------------------

_NUM = r"(?P<secs>\d+(?:\.\d+)?)"
MARKERS: dict[str, re.Pattern[str]] = {
    "api_version": re.compile(r"vLLM API server version (?P<version>\S+)"),
    "engine_config": re.compile(r"Initializing an? (?:V1 )?LLM engine \((?P<version>[^)]+)\) with config: (?P<config>.*)"),
    "load_start": re.compile(r"Starting to load model (?P<model>\S+?)(?:\.\.\.)?$"),
    "runai": re.compile(
        r"\[RunAI Streamer\] Overall time to stream (?P<size>\d+(?:\.\d+)?) ?(?P<size_unit>[KMGT]i?B|Bytes?|B)"
        r"(?: of all files)?(?: to (?P<device>\S+?))?: " + _NUM + r" ?s, "
        r"(?P<rate>\d+(?:\.\d+)?) ?(?P<rate_unit>[KMGT]i?B|Bytes?|B)/s"
    ),
    "weights_loaded": re.compile(r"Loading weights took " + _NUM + r" seconds"),
    "model_loaded": re.compile(r"Model loading took (?P<gib>-?\d+(?:\.\d+)?) ?GiB(?: memory)? and " + _NUM + r" seconds"),
    "compile_cache_dir": re.compile(r"Using cache directory: (?P<dir>\S+) for vLLM's torch\.compile"),
    "dynamo": re.compile(r"Dynamo bytecode transform time: " + _NUM + r" s"),
    "compile_graph": re.compile(r"Compiling a graph for (?P<what>.+?) takes " + _NUM + r" s"),
    "compile_cache_hit": re.compile(r"Directly load the compiled graph\(s\) for (?P<what>.+?) from the cache, took " + _NUM + r" s"),
    "compile_total": re.compile(r"torch\.compile takes " + _NUM + r" s in total"),
    "graph_capture": re.compile(r"Graph capturing finished in " + _NUM + r" secs?, took (?P<gib>-?\d+(?:\.\d+)?) GiB"),
    "engine_init": re.compile(
        r"init engine \(profile, create kv cache, warmup model\) took " + _NUM
        + r" ?(?:s|seconds)(?: \(compilation: (?P<compile>\d+(?:\.\d+)?) s\))?"
    ),
    "api_start": re.compile(r"Starting vLLM API server(?: \d+)? on (?P<addr>\S+)"),
    "app_startup": re.compile(r"^Application startup complete\.?$"),
    "models_ok": re.compile(r'"GET /v1/models(?:\?\S*)? HTTP/[\d.]+" 200\b'),
}

_UNITS = {"B": 1, "Byte": 1, "Bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def _bytes(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


@dataclass(frozen=True)
class Hit:
    marker: str
    line: LogLine
    groups: dict[str, str]

    @property
    def secs(self) -> float:
        return float(self.groups["secs"])


@dataclass
class VllmLog:
    """The start of one container attempt as its log tells it. Missing lines stay None."""

    lines: list[LogLine]
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    kubectl_timestamps: bool = False  # saved with `kubectl logs --timestamps`

    def first(self, marker: str) -> Hit | None:
        found = self.hits.get(marker)
        return found[0] if found else None

    def last(self, marker: str) -> Hit | None:
        found = self.hits.get(marker)
        return found[-1] if found else None

    def longest(self, marker: str) -> Hit | None:
        """With tensor parallelism every worker logs its own line; they run side by side, so the
        slowest one is the phase's length."""
        found = self.hits.get(marker)
        return max(found, key=lambda h: h.secs) if found else None

    @property
    def version(self) -> str | None:
        for marker in ("engine_config", "api_version"):
            if hit := self.first(marker):
                return hit.groups["version"]
        return None

    @property
    def enforce_eager(self) -> bool:
        hit = self.first("engine_config")
        return bool(hit and "enforce_eager=True" in hit.groups["config"])

    @property
    def last_ts(self) -> datetime | None:
        for line in reversed(self.lines):
            if line.ts is not None:
                return line.ts
        return None

    # --- derived facts ---
    def streamer(self) -> dict[str, float | str] | None:
        hit = self.longest("runai")
        if hit is None:
            return None
        g = hit.groups
        return {
            "bytes": _bytes(g["size"], g["size_unit"]),
            "seconds": float(g["secs"]),
            "bytesPerSecond": _bytes(g["rate"], g["rate_unit"]),
            "text": f"{g['size']} {g['size_unit']} at {g['rate']} {g['rate_unit']}/s",
        }


def parse_vllm_log(text: str, *, reference: datetime) -> VllmLog:
    lines = parse_lines(text, reference=reference)
    log = VllmLog(lines=lines, kubectl_timestamps=any(_K8S_TS.match(raw) for raw in _first_lines(text, 5)))
    for line in lines:
        for name, rx in MARKERS.items():
            if m := rx.search(line.message):
                log.hits.setdefault(name, []).append(Hit(name, line, {k: v for k, v in m.groupdict().items() if v is not None}))
    return log


def _first_lines(text: str, n: int) -> Iterable[str]:
    for i, line in enumerate(text.splitlines()):
        if i >= n:
            break
        yield _ANSI.sub("", line)


def seconds_between(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return (b - a) / timedelta(seconds=1)
