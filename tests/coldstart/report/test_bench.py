"""bench/run.py: the table renders, missing pieces are n/a, failures are flagged. No timings asserted."""

import importlib.util
import sys
from pathlib import Path

import pytest

# bench/ is a script folder, not a package: load run.py by path.
_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).resolve().parents[3] / "bench" / "run.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = bench  # dataclasses look their module up here
_spec.loader.exec_module(bench)


def test_table_renders_fake_measurements():
    text = bench.render_table([
        bench.Measurement("full synth (app.py)", 41.234, "3 template(s)"),
        bench.Measurement("test suite", 0.5, "87 passed in 0.49s"),
        bench.Measurement("rehearsal (coldstart rehearse)", None, "n/a: the CLI has no rehearse command yet"),
    ])
    lines = text.splitlines()
    assert lines[0].split() == ["What", "Time", "Note"] and set(lines[1].replace(" ", "")) == {"-"}
    assert "41.2 s" in lines[2] and "3 template(s)" in lines[2]
    assert "500 ms" in lines[3]
    assert lines[4].split()[3:5] == ["n/a", "n/a:"]


def test_empty_project_gives_na_rows_without_running_anything(tmp_path, capsys):
    def never(*args, **kwargs):
        raise AssertionError("nothing should run")

    assert bench.main([], root=tmp_path, run=never) == 0
    out, err = capsys.readouterr()
    assert "n/a: app.py missing" in out
    assert "n/a: tests/ missing" in out
    assert "n/a: the coldstart CLI" in out
    assert "n/a: no handler modules" in out
    assert "[bench] 1/4 synth ..." in err  # progress on stderr


def _project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "coldstart").mkdir()
    (tmp_path / "coldstart" / "__main__.py").write_text("")
    handlers = tmp_path / "lambdas" / "snapshot_pipeline" / "handlers"
    handlers.mkdir(parents=True)
    for name in ("__init__.py", "check_online.py", "publish.py"):
        (handlers / name).write_text("")
    return tmp_path


def test_commands_and_rows(tmp_path, capsys):
    root = _project(tmp_path)
    calls = []

    def fake(cmd, *, cwd, env=None, timeout=None):
        calls.append((cmd, env))
        if cmd[1:] == ["-m", "coldstart", "rehearse"]:
            return bench.Result(2, "", "Error: No such command 'rehearse'.", 0.3)
        if cmd[1] == "-c":
            return bench.Result(0, "0.412000\n", "", 0.6)
        return bench.Result(0, "12 passed in 1.00s\n", "", 1.5)

    assert bench.main(["--subset", "tests/coldstart/report"], root=root, run=fake) == 0
    out = capsys.readouterr().out
    synth_cmd, synth_env = calls[0]
    assert synth_cmd[1:] == ["app.py"] and "bench-cdk-out-" in synth_env["CDK_OUTDIR"]
    assert calls[1][0][1:] == ["-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", "tests/coldstart/report"]  # as `make test` runs it
    imported = [c[0][-1] for c in calls if c[0][1] == "-c"]
    assert imported == ["lambdas.snapshot_pipeline.handlers.check_online", "lambdas.snapshot_pipeline.handlers.publish"]
    assert "n/a: the CLI has no rehearse command yet" in out
    assert "cold import check_online" in out and "412 ms" in out


def test_failure_is_reported_and_exit_code_set(tmp_path, capsys):
    root = _project(tmp_path)

    def fake(cmd, *, cwd, env=None, timeout=None):
        if cmd[1:] == ["app.py"]:
            return bench.Result(1, "", "Traceback...\nConfigError: coldstart:region: invalid value 'x'", 2.0)
        return bench.Result(0, "0.1\n", "", 0.1)

    assert bench.main(["--skip", "tests,rehearsal"], root=root, run=fake) == 1
    out = capsys.readouterr().out
    assert "failed (exit 1): ConfigError: coldstart:region: invalid value 'x'" in out
    assert "test suite" not in out


def test_unknown_skip_section_is_rejected(tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--skip", "lint"], root=tmp_path)
