"""``make bench``: how fast this project's own tools run on this machine.

Rows (each measured once, wall clock, in a fresh process):
- full synth: ``.venv/bin/python app.py`` with ``CDK_OUTDIR`` in a temporary directory;
- test suite: ``pytest -q -n 2 -p no:cacheprovider``, as ``make test`` runs it (``--workers`` sets the
  xdist workers, ``make bench`` passes its PYTEST_WORKERS; ``--subset tests/coldstart/report`` narrows it);
- rehearsal: ``.venv/bin/python -m coldstart rehearse``;
- one row per Lambda handler module under lambdas/snapshot_pipeline/handlers/: its cold import
  time (wall; its CPU time in the note), timed inside a fresh interpreter (interpreter start-up excluded).

A row whose subject does not exist yet says "n/a: ..." instead of failing; a command that fails
reports its exit code. Progress goes to stderr, the table to stdout. Numbers vary with the load
on the machine: compare runs on the same machine, and do not assert on them in tests.

    .venv/bin/python bench/run.py [--workers 2] [--subset tests/coldstart/report ...] [--skip synth,tests,rehearsal,imports]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = Path("lambdas") / "snapshot_pipeline" / "handlers"
SECTIONS = ("synth", "tests", "rehearsal", "imports")
TIMEOUT_S = 1800
DEFAULT_WORKERS = 2  # pytest-xdist workers, as `make test` (PYTEST_WORKERS) runs the suite

# Handlers read these when they run, not when imported; set so an import never trips on them.
HANDLER_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

# Prints "<wall s> <cpu s>": the CPU time is what the import costs this process alone, which stays
# comparable when other processes load the machine (wall clock then stretches with the load).
_IMPORT_TIMER = (
    "import importlib, sys, time\n"
    "t, c = time.perf_counter(), time.process_time()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(f'{time.perf_counter() - t:.6f} {time.process_time() - c:.6f}')\n"
)


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float | None
    note: str = ""


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


Run = Callable[..., Result]


def run_timed(cmd: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = TIMEOUT_S) -> Result:
    start = time.perf_counter()
    try:
        done = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Result(124, "", f"timed out after {timeout:.0f} s", time.perf_counter() - start)
    return Result(done.returncode, done.stdout, done.stderr, time.perf_counter() - start)


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def _python(root: Path) -> str:
    venv = root / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _failed(name: str, res: Result) -> Measurement:
    why = _last_line(res.stderr) or _last_line(res.stdout) or "no output"
    return Measurement(name, res.seconds, f"failed (exit {res.returncode}): {why[:100]}")


def measure_synth(root: Path, run: Run = run_timed) -> Measurement:
    name = "full synth (app.py)"
    if not (root / "app.py").exists():
        return Measurement(name, None, "n/a: app.py missing")
    with tempfile.TemporaryDirectory(prefix="bench-cdk-out-") as out:
        res = run([_python(root), "app.py"], cwd=root, env={**os.environ, "CDK_OUTDIR": out})
        templates = len(list(Path(out).glob("*.template.json")))
    if res.returncode != 0:
        return _failed(name, res)
    return Measurement(name, res.seconds, f"{templates} template(s)")


def measure_tests(root: Path, subset: Sequence[str] = (), run: Run = run_timed, *, workers: int = DEFAULT_WORKERS) -> Measurement:
    name = "test suite" + (f" ({' '.join(subset)})" if subset else "") + f", -n {workers}"
    if not (root / "tests").is_dir():
        return Measurement(name, None, "n/a: tests/ missing")
    # As `make test` runs it: pytest may cache its rewritten test modules as .pyc (the Makefile clears an inherited
    # PYTHONDONTWRITEBYTECODE, which would make every run recompile them: seconds per worker).
    res = run([_python(root), "-m", "pytest", "-q", "-n", str(workers), "-p", "no:cacheprovider", *subset], cwd=root,
              env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    summary = _last_line(res.stdout)
    if res.returncode != 0:
        return Measurement(name, res.seconds, f"failed (exit {res.returncode}): {summary[:100]}")
    return Measurement(name, res.seconds, summary)


def measure_rehearsal(root: Path, run: Run = run_timed) -> Measurement:
    name = "rehearsal (coldstart rehearse)"
    if not (root / "coldstart" / "__main__.py").exists():
        return Measurement(name, None, "n/a: the coldstart CLI (coldstart/__main__.py) is missing")
    res = run([_python(root), "-m", "coldstart", "rehearse"], cwd=root)
    if res.returncode != 0 and "No such command" in res.stderr:
        return Measurement(name, None, "n/a: the CLI has no rehearse command yet")
    if res.returncode != 0:
        return _failed(name, res)
    return Measurement(name, res.seconds, _last_line(res.stdout)[:100])


def handler_modules(root: Path) -> list[str]:
    folder = root / HANDLERS
    if not folder.is_dir():
        return []
    package = ".".join(HANDLERS.parts)
    return [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


def measure_imports(root: Path, run: Run = run_timed) -> list[Measurement]:
    modules = handler_modules(root)
    if not modules:
        return [Measurement("handler imports", None, f"n/a: no handler modules under {HANDLERS}/")]
    env = {**os.environ, **HANDLER_ENV, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    out = []
    for module in modules:
        name = f"cold import {module.rsplit('.', 1)[-1]}"
        res = run([_python(root), "-c", _IMPORT_TIMER, module], cwd=root, env=env, timeout=120)
        if res.returncode != 0:
            out.append(_failed(name, res))
            continue
        try:
            wall, *cpu = (float(v) for v in _last_line(res.stdout).split())
            out.append(Measurement(name, wall, (f"cpu {cpu[0] * 1000:.0f} ms; " if cpu else "") + module))
        except ValueError:
            out.append(Measurement(name, None, f"unreadable timer output: {_last_line(res.stdout)[:60]}"))
    return out


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def render_table(rows: Sequence[Measurement]) -> str:
    header = ("What", "Time", "Note")
    cells = [(r.name, fmt_seconds(r.seconds), r.note) for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(3)]
    lines = []
    for i, (name, secs, note) in enumerate([header, *cells]):
        lines.append(f"{name.ljust(widths[0])}  {secs.rjust(widths[1])}  {note}".rstrip())
        if i == 0:
            lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * max(widths[2], 4)}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, *, root: Path = ROOT, run: Run = run_timed) -> int:
    parser = argparse.ArgumentParser(description="Time this project's synth, tests, rehearsal and handler imports.")
    parser.add_argument("--subset", nargs="+", default=[], metavar="PATH", help="pytest paths for the test-suite row")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="pytest-xdist workers for the test-suite row (0: one process)")
    parser.add_argument("--skip", default="", help=f"comma-separated sections to skip: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if unknown := skip - set(SECTIONS):
        parser.error(f"--skip: unknown section {sorted(unknown)[0]!r}; choose from {', '.join(SECTIONS)}")

    def progress(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    rows: list[Measurement] = []
    steps: list[tuple[str, Callable[[], list[Measurement]]]] = [
        ("synth", lambda: [measure_synth(root, run)]),
        ("tests", lambda: [measure_tests(root, args.subset, run, workers=args.workers)]),
        ("rehearsal", lambda: [measure_rehearsal(root, run)]),
        ("imports", lambda: measure_imports(root, run)),
    ]
    todo = [(n, f) for n, f in steps if n not in skip]
    for i, (section, measure) in enumerate(todo, start=1):
        progress(f"{i}/{len(todo)} {section} ...")
        got = measure()
        for m in got:
            progress(f"    {m.name}: {fmt_seconds(m.seconds)}{'  (' + m.note + ')' if m.note else ''}")
        rows += got
    print(render_table(rows), end="")
    return 1 if any(r.note.startswith("failed") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
