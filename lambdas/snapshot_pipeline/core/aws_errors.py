"""Translate botocore errors into the pipeline's error classes, so the state machine can route them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from .errors import AwsCallFailed, AwsThrottled, AwsTransient, PipelineError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
TRANSIENT_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "RequestTimeout", "Unavailable"})

F = TypeVar("F", bound=Callable[..., Any])


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception) -> Exception:
    """The pipeline error for a botocore exception (others are returned unchanged)."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        op = exc.operation_name
        message = exc.response.get("Error", {}).get("Message", "")
        if code in THROTTLING_CODES:
            return AwsThrottled(f"{op} was throttled ({code}); the state machine retries with backoff")
        if code in TRANSIENT_CODES or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            return AwsTransient(f"{op} failed transiently ({code}: {message})")
        return AwsCallFailed(f"{op} failed: {code}: {message}")
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return AwsTransient(f"network error calling AWS: {exc}")
    return exc


def aws_errors(fn: F) -> F:
    """Decorator for handlers: re-raise botocore errors as pipeline errors (class name = error name)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipelineError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated or re-raised unchanged
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    return wrapper  # type: ignore[return-value]
