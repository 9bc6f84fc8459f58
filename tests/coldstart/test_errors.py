"""One central error handler: expected failures are one line on stderr and exit 1, bugs keep a traceback."""

from __future__ import annotations

import pytest

from coldstart.cli import app


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)


def assert_one_line_error(result, *fragments: str, exit_code: int = 1) -> None:
    assert result.exit_code == exit_code
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # handled, not an escaped exception


@pytest.mark.parametrize("command", [["snapshots"], ["rollback", "--yes"], ["create-snapshot", "--state-machine-arn", "arn:x"]])
def test_missing_credentials_is_one_line(cli, no_credentials, command):
    result = cli(*command)

    assert_one_line_error(result, "no usable AWS credentials", "AWS_PROFILE")


def test_missing_region_is_one_line(cli, monkeypatch):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")

    assert_one_line_error(cli("snapshots"), "no AWS region", "--region")


def test_unreachable_endpoint_is_one_line(cli, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: connection refused
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    assert_one_line_error(cli("snapshots"), "cannot reach AWS", "--region")


def test_bad_config_override_names_the_key_and_is_a_usage_error(cli):
    assert_one_line_error(cli("-c", "maxAzs=9", "snapshots"), "configuration: coldstart:maxAzs", "2 to 3", exit_code=2)


def test_malformed_override_is_one_line(cli):
    assert_one_line_error(cli("-c", "maxAzs", "snapshots"), "expected key=value", exit_code=2)


def test_unknown_config_key_is_one_line(cli):
    assert_one_line_error(cli("-c", "nope=1", "snapshots"), "coldstart:nope: unknown key", exit_code=2)


def test_a_bug_is_not_disguised_as_an_expected_error(cli, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("coldstart.ops.snapshots.snapshot_rows", broken)

    result = cli("snapshots")

    assert isinstance(result.exception, RuntimeError)


def test_every_command_has_help():
    from typer.testing import CliRunner

    runner = CliRunner()
    commands = app.registered_commands
    assert {c.name for c in commands} >= {"setup-model-s3", "create-snapshot", "snapshots", "rollback", "doctor"}
    for command in commands:
        result = runner.invoke(app, [command.name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.stdout
        assert len(command.callback.__doc__ or "") > 40, f"{command.name} needs a docstring that explains it"


def test_debug_keeps_the_traceback_of_an_expected_error(cli):
    from settings.config import ConfigError

    result = cli("--debug", "-c", "maxAzs=9", "snapshots")

    assert isinstance(result.exception, ConfigError)
