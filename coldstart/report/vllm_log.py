"""Parsing a vLLM pod log into the milestones of its start.

Every format below was read in vLLM's public source (repository vllm-project/vllm, through an
offline code index). ``@<commit>`` marks a file read whole at that commit. Strings without a commit
were found by exact-text search across the index's copies of that file, whose commits the search
does not report. Where the text changed between releases, every form is accepted. The project's
default image is v0.34.0; its lines are listed in their own section below, each with the file:line
at tag v0.34.0 (read from the released wheel's sources). For the releases before it, which form of
a changed line a given release prints was not pinned down release by release offline; "older" and
"newer" in the first part are relative, and both are parsed.

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

vLLM v0.34.0 (vllm-project/vllm v0.34.0 <path>:<line>, paths under vllm/)
  Prefix, logger.py:28 (datefmt logger.py:33): ``(%(vllm_process_name)s pid=%(process)d)
  %(levelname)s %(asctime)s [%(fileinfo)s:%(lineno)d] %(message)s`` -- the process tag is part of the
  format on every line (``APIServer``, ``EngineCore``, ``Worker_TP0``...); the nested child-stdout
  prefix of older releases is gone. logging_utils/formatter.py NewLineFormatter repeats the prefix
  on every line of a multi-line message, joined by ``\r\n``.
  entrypoints/common/startup.py:18/38: "vLLM server version %s, serving model %s" only with
    VLLM_DISABLE_LOG_LOGO=1; by default a four-line block-glyph logo whose second and third lines
    end "  version %s" and "  model   %s" (called from entrypoints/launchers/launcher.py:368).
  entrypoints/launchers/api_server/entry.py:135/139: "Supported tasks: %s", "Starting vLLM server on %s".
  v1/engine/core.py:154: "Initializing a V1 LLM engine (v%s) with config: %s" (unchanged);
    core.py:442/452/459: "init engine (profile, create kv cache, warmup model) took %.2f s
    (compilation: %.2f s — language_model: %.2f s, encoder: %.2f s)", "... took %.2f s
    (compilation: %.2f s)", "... took %.2f s".
  v1/worker/gpu/model_runner.py:412: "Loading model from scratch..." (replaces "Starting to load
    model %s..."); :442 "Model loading took %s GiB memory and %.6f seconds"; :1217 "Graph capturing
    finished in %.0f secs, took %.2f GiB".
  model_executor/model_loader/base_loader.py:96: "Initializing model took %.6f seconds";
    default_loader.py:544: "Loading weights took %.2f seconds".
  compilation/ ("%s" before a message is an optional "[tag] " prefix):
    monitor.py:40 "%sStarting torch.compile"; monitor.py:20 "%storch.compile took %.2f s in total";
    decorators.py:716 "%storch.compile and initial profiling/warmup run together took %.2f s in
    total"; monitor.py:92 "%sInitial profiling/warmup run took %.2f s";
    backends.py:1111 "%sUsing cache directory: %s for vLLM's torch.compile";
    backends.py:1168 "%sDynamo bytecode transform time: %.2f s";
    backends.py:422 "%sCompiling a graph for compile range %s takes %.2f s";
    backends.py:315 "%sDirectly load the compiled graph(s) for compile range %s from the cache, took %.3f s";
    decorators.py:327 "%sDirectly load AOT compilation from path %s" (a compile-cache hit: the AOT
    artifact is loaded, no Dynamo run; the total line is still logged, without the start line);
    decorators.py:752 "%ssaved AOT compiled function to %s" (a miss whose result was cached).
  runai-model-streamer 0.17.1 safetensors_streamer.py:237: "[RunAI Streamer] Overall time to stream
    %s of all files to %s: %ss, %s/s"; logged only with RUNAI_STREAMER_LOG_TO_STDERR=1, through its
    own handler (runai_model_streamer/__init__.py:44): ``%(asctime)s [%(levelname)s] %(message)s``,
    i.e. ``2026-12-02 10:00:33,104 [INFO] ...`` (logging's default asctime, container time = UTC).
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
    r"\[?(?P<file>[^\s\]]+):(?P<lineno>\d+)\](?: (?P<msg>.*))?$"  # msg is empty on a logo's blank lines
)
_RUNAI_PY = re.compile(
    r"^\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\] (?P<level>[A-Z]+) (?P<file>[^\s:]+):(?P<lineno>\d+): (?P<msg>.*)$"
)
# runai-model-streamer 0.17.1 with RUNAI_STREAMER_LOG_TO_STDERR=1: logging's default asctime, with milliseconds.
_RUNAI_STDERR = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(?P<ms>\d{3}) \[(?P<level>[A-Z]+)\] (?P<msg>.*)$"
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
            level, message = m["level"], m["msg"] or ""
            if ts is None:
                ts = _infer_year(m["md"], m["hms"], reference)
        elif m := _RUNAI_PY.match(line):
            level, message = m["level"], m["msg"]
            if ts is None:
                ts = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        elif m := _RUNAI_STDERR.match(line):
            level, message = m["level"], m["msg"]
            if ts is None:
                ts = datetime.strptime(f"{m['ts']}.{m['ms']}", "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
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
_TAG = r"(?:^\[(?P<tag>[^\]]+)\] )?"  # v0.34.0 compilation lines: "[tag] " for a tagged (e.g. encoder) model
# Each marker is one or more patterns, tried in order; the first that matches a line makes the hit.
MARKERS: dict[str, tuple[re.Pattern[str], ...]] = {
    "api_version": (
        re.compile(r"vLLM API server version (?P<version>\S+)"),
        re.compile(r"vLLM server version (?P<version>\S+), serving model (?P<model>\S+)"),  # v0.34.0, no logo
    ),  # the v0.34.0 logo spans two lines: see _logo_hits
    "engine_config": (re.compile(r"Initializing an? (?:V1 )?LLM engine \((?P<version>[^)]+)\) with config: (?P<config>.*)"),),
    "load_start": (
        re.compile(r"Starting to load model (?P<model>\S+?)(?:\.\.\.)?$"),
        re.compile(r"^Loading model from scratch\.\.\.$"),  # v0.34.0
    ),
    "model_init": (re.compile(r"^Initializing model took " + _NUM + r" seconds"),),  # v0.34.0
    "runai": (re.compile(
        r"\[RunAI Streamer\] Overall time to stream (?P<size>\d+(?:\.\d+)?) ?(?P<size_unit>[KMGT]i?B|Bytes?|B)"
        r"(?: of all files)?(?: to (?P<device>\S+?))?: " + _NUM + r" ?s, "
        r"(?P<rate>\d+(?:\.\d+)?) ?(?P<rate_unit>[KMGT]i?B|Bytes?|B)/s"
    ),),
    "weights_loaded": (re.compile(r"Loading weights took " + _NUM + r" seconds"),),
    "model_loaded": (re.compile(r"Model loading took (?P<gib>-?\d+(?:\.\d+)?) ?GiB(?: memory)? and " + _NUM + r" seconds"),),
    "compile_start": (re.compile(_TAG + r"Starting torch\.compile$"),),  # v0.34.0
    "compile_cache_dir": (re.compile(r"Using cache directory: (?P<dir>\S+) for vLLM's torch\.compile"),),
    "dynamo": (re.compile(r"Dynamo bytecode transform time: " + _NUM + r" s"),),
    "compile_graph": (re.compile(r"Compiling a graph for (?P<what>.+?) takes " + _NUM + r" s"),),
    "compile_cache_hit": (re.compile(r"Directly load the compiled graph\(s\) for (?P<what>.+?) from the cache, took " + _NUM + r" s"),),
    "compile_aot_load": (re.compile(_TAG + r"Directly load AOT compilation from path (?P<path>\S+)"),),  # v0.34.0 cache hit
    "compile_aot_saved": (re.compile(_TAG + r"saved AOT compiled function to (?P<path>\S+)"),),  # v0.34.0
    "compile_total": (re.compile(
        _TAG + r"torch\.compile (?:takes|took|and initial profiling/warmup run together took) " + _NUM + r" s in total"
    ),),
    "compile_warmup": (re.compile(_TAG + r"Initial profiling/warmup run took " + _NUM + r" s"),),  # v0.34.0
    "graph_capture": (re.compile(r"Graph capturing finished in " + _NUM + r" secs?, took (?P<gib>-?\d+(?:\.\d+)?) GiB"),),
    "engine_init": (re.compile(
        r"init engine \(profile, create kv cache, warmup model\) took " + _NUM
        + r" ?(?:s|seconds)(?: \(compilation: (?P<compile>\d+(?:\.\d+)?) s[^)]*\))?"  # v0.34.0: "... s — language_model: ..."
    ),),
    "api_start": (re.compile(r"Starting vLLM (?:API )?server(?: \d+)? on (?P<addr>\S+)"),),
    "app_startup": (re.compile(r"^Application startup complete\.?$"),),
    "models_ok": (re.compile(r'"GET /v1/models(?:\?\S*)? HTTP/[\d.]+" 200\b'),),
}

# The v0.34.0 logo (entrypoints/common/startup.py:18): block glyphs, then "version <v>" on one line
# and "model   <m>" on the next. Both must be there, one after the other, from the same process.
_LOGO_GLYPHS = "\u2588\u2584\u2580 "  # █ ▄ ▀ and space
_LOGO_VERSION = re.compile(rf"^[{_LOGO_GLYPHS}]+ version\s+(?P<version>\S+)$")
_LOGO_MODEL = re.compile(rf"^[{_LOGO_GLYPHS}]+ model\s+(?P<model>\S+)$")

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
    def model(self) -> str | None:
        """The model served, from the version line (v0.34.0) or the load line (older)."""
        for marker in ("api_version", "load_start"):
            if (hit := self.first(marker)) and "model" in hit.groups:
                return hit.groups["model"]
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
        for name, patterns in MARKERS.items():
            for rx in patterns:
                if m := rx.search(line.message):
                    log.hits.setdefault(name, []).append(Hit(name, line, _groups(m)))
                    break
    for hit in _logo_hits(lines):
        log.hits.setdefault(hit.marker, []).append(hit)
        log.hits[hit.marker].sort(key=lambda h: h.line.number)
    return log


def _groups(m: re.Match[str]) -> dict[str, str]:
    return {k: v for k, v in m.groupdict().items() if v is not None}


def _logo_hits(lines: list[LogLine]) -> Iterable[Hit]:
    """The v0.34.0 logo's version and model lines, as one ``api_version`` hit on the version line."""
    for line, after in zip(lines, lines[1:], strict=False):
        if (v := _LOGO_VERSION.match(line.message)) and (m := _LOGO_MODEL.match(after.message)) \
                and line.process == after.process:
            yield Hit("api_version", line, {"version": v["version"], "model": m["model"]})


def _first_lines(text: str, n: int) -> Iterable[str]:
    for i, line in enumerate(text.splitlines()):
        if i >= n:
            break
        yield _ANSI.sub("", line)


def seconds_between(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return (b - a) / timedelta(seconds=1)
