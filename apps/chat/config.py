"""The chat app's settings, read once from the environment at startup and validated.

Every knob is declared once in `_FIELDS` (name, default, parser, meaning). A bad value stops the
process before it listens, with one line per bad variable naming the variable, the value and the
fix; `python -m apps.chat --help-env` prints the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The vLLM chart's Service (k8s_charts/vllm.py): `vllm` in the namespace cdk.json's
# coldstart:vllmNamespace ("vllm"), port 8000. Set VLLM_BASE_URL when either differs.
DEFAULT_VLLM_BASE_URL = "http://vllm.vllm.svc:8000"


class ConfigError(ValueError):
    """One or more environment variables are invalid; `problems` has one sentence per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid chat app configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Settings:
    vllm_base_url: str = DEFAULT_VLLM_BASE_URL
    served_model_name: str | None = None
    vllm_api_key: str | None = None  # a secret: never logged, never sent to the page
    host: str = "0.0.0.0"  # a container listens on all its interfaces
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    max_messages: int = 32
    max_chars: int = 16_000
    max_tokens: int = 512
    max_concurrency: int = 8
    upstream_timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    retry_after_s: int = 5
    log_level: str = "INFO"

    def __repr__(self) -> str:  # the API key must not reach a log line or a traceback
        shown = {k: v for k, v in self.__dict__.items() if k != "vllm_api_key"}
        shown["vllm_api_key"] = "<set>" if self.vllm_api_key else None
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number of seconds from {low:g} to {high:g}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"expected a number of seconds from {low:g} to {high:g}")
        return value

    return parse


def _base_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host, e.g. http://vllm.vllm.svc:8000")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("expected a base URL without query, fragment or credentials (put a key in VLLM_API_KEY)")
    if parts.path.endswith("/v1"):
        raise ValueError("expected the server's base URL without /v1 (the app adds /v1/... itself)")
    return value


def _optional_text(raw: str) -> str | None:
    value = raw.strip()
    if any(ch.isspace() for ch in value):
        raise ValueError("expected a single word without spaces")
    return value or None


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
    return value


# env var -> (Settings field, parser, meaning)
_FIELDS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "VLLM_BASE_URL": ("vllm_base_url", _base_url, "vLLM's OpenAI-compatible server, without /v1"),
    "SERVED_MODEL_NAME": ("served_model_name", _optional_text, "model name to request; empty = the first of GET /v1/models"),
    "VLLM_API_KEY": ("vllm_api_key", _optional_text, "bearer token if vLLM runs with --api-key (never logged)"),
    "CHAT_HOST": ("host", _optional_text, "address to listen on"),
    "CHAT_PORT": ("port", _int(1, 65535), "port to listen on"),
    "CHAT_MAX_BODY_BYTES": ("max_body_bytes", _int(1024, 10 * 1024 * 1024), "largest POST /api/chat body (413 above)"),
    "CHAT_MAX_MESSAGES": ("max_messages", _int(1, 1000), "most messages in one conversation (422 above)"),
    "CHAT_MAX_CHARS": ("max_chars", _int(1, 1_000_000), "most characters over all messages (422 above)"),
    "CHAT_MAX_TOKENS": ("max_tokens", _int(1, 131_072), "cap on max_tokens per answer (larger requests are capped)"),
    "CHAT_MAX_CONCURRENCY": ("max_concurrency", _int(1, 1024), "answers streamed at once (429 above)"),
    "CHAT_UPSTREAM_TIMEOUT_S": ("upstream_timeout_s", _seconds(1, 3600), "longest silence from vLLM inside an answer"),
    "CHAT_CONNECT_TIMEOUT_S": ("connect_timeout_s", _seconds(0.1, 60), "longest wait to connect to vLLM"),
    "CHAT_RETRY_AFTER_S": ("retry_after_s", _int(1, 300), "Retry-After sent while the model is starting or busy"),
    "CHAT_LOG_LEVEL": ("log_level", _log_level, "DEBUG, INFO, WARNING or ERROR"),
}


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from `env` (os.environ in production); raises ConfigError naming every bad variable."""
    defaults = Settings()
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, (field, parse, _meaning) in _FIELDS.items():
        raw = env.get(name)
        if raw is None:
            continue
        try:
            parsed = parse(raw)
        except ValueError as exc:
            shown = "<hidden>" if name == "VLLM_API_KEY" else repr(raw)
            default = getattr(defaults, field)
            fix = f"unset it for the default ({default})" if default is not None else "unset it"
            problems.append(f"{name}={shown} is invalid: {exc}. Fix: set {name} to a valid value, or {fix}.")
            continue
        if parsed is not None or field in ("served_model_name", "vllm_api_key"):
            values[field] = parsed
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def describe_env() -> str:
    """The variables, their defaults and meanings, one per line (for --help-env and the README)."""
    defaults = Settings()
    lines = []
    for name, (field, _parse, meaning) in _FIELDS.items():
        default = getattr(defaults, field)
        lines.append(f"{name:<24} default {'(none)' if default is None else default!s:<28} {meaning}")
    return "\n".join(lines)
