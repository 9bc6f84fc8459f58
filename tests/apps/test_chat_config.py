"""The chat app's environment: defaults, and a bad value stops it before it listens, naming the
variable, the value and the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.chat.config import DEFAULT_VLLM_BASE_URL, ConfigError, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.vllm_base_url == DEFAULT_VLLM_BASE_URL == "http://vllm.vllm.svc:8000"
    assert settings.served_model_name is None and settings.vllm_api_key is None


def test_values_are_parsed() -> None:
    settings = load_settings({"VLLM_BASE_URL": "http://10.0.0.5:8000/", "SERVED_MODEL_NAME": "mistral-7b-awq",
                              "CHAT_MAX_CONCURRENCY": " 3 ", "CHAT_UPSTREAM_TIMEOUT_S": "2.5", "CHAT_LOG_LEVEL": "debug"})
    assert settings.vllm_base_url == "http://10.0.0.5:8000"
    assert settings.served_model_name == "mistral-7b-awq"
    assert settings.max_concurrency == 3 and settings.upstream_timeout_s == 2.5 and settings.log_level == "DEBUG"


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("CHAT_MAX_CONCURRENCY", "lots", "expected a whole number from 1 to 1024"),
    ("CHAT_MAX_CONCURRENCY", "0", "expected a whole number from 1 to 1024"),
    ("CHAT_PORT", "70000", "expected a whole number from 1 to 65535"),
    ("CHAT_UPSTREAM_TIMEOUT_S", "nan", "expected a number of seconds from 1 to 3600"),
    ("VLLM_BASE_URL", "vllm:8000", "expected an http:// or https:// URL with a host"),
    ("VLLM_BASE_URL", "http://vllm.vllm.svc:8000/v1", "expected the server's base URL without /v1"),
    ("VLLM_BASE_URL", "http://user:pw@vllm:8000", "expected a base URL without query, fragment or credentials"),
    ("CHAT_LOG_LEVEL", "chatty", "expected one of DEBUG, INFO, WARNING, ERROR"),
    ("SERVED_MODEL_NAME", "two words", "expected a single word without spaces"),
])
def test_a_bad_value_names_the_variable_the_value_and_the_fix(name: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{name}={value!r} is invalid: {reason}")
    assert f"Fix: set {name} to a valid value, or unset it" in problem


def test_every_bad_variable_is_reported_at_once_and_the_api_key_is_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"CHAT_PORT": "x", "CHAT_MAX_TOKENS": "-1", "VLLM_API_KEY": "sk live key"})
    assert [p.split("=")[0] for p in caught.value.problems] == ["VLLM_API_KEY", "CHAT_PORT", "CHAT_MAX_TOKENS"]
    assert "sk live key" not in str(caught.value) and "VLLM_API_KEY=<hidden>" in str(caught.value)
    assert "sk-secret" not in repr(Settings(vllm_api_key="sk-secret"))


def test_the_process_stops_at_startup_with_the_message() -> None:
    env = {**os.environ, "CHAT_MAX_CONCURRENCY": "lots", "CHAT_PORT": "0"}
    run = subprocess.run([sys.executable, "-m", "apps.chat"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "chat: invalid chat app configuration:" in run.stderr
    assert "CHAT_MAX_CONCURRENCY='lots' is invalid: expected a whole number from 1 to 1024. " \
           "Fix: set CHAT_MAX_CONCURRENCY to a valid value, or unset it for the default (8)." in run.stderr
    assert "CHAT_PORT='0' is invalid" in run.stderr


def test_help_env_lists_every_variable() -> None:
    run = subprocess.run([sys.executable, "-m", "apps.chat", "--help-env"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0
    for name in ("VLLM_BASE_URL", "SERVED_MODEL_NAME", "VLLM_API_KEY", "CHAT_MAX_BODY_BYTES", "CHAT_MAX_MESSAGES",
                 "CHAT_MAX_CHARS", "CHAT_MAX_TOKENS", "CHAT_MAX_CONCURRENCY", "CHAT_RETRY_AFTER_S"):
        assert name in run.stdout
