"""Powertools Logger, Tracer and Metrics, shared by all handlers.

Logger and Metrics are created once per module load. The Tracer is created on the first invocation
instead: building it imports the X-Ray SDK and patches botocore, which would otherwise dominate every
handler's cold import. It still exists before a handler body makes its first AWS client, so every
AWS call of an invocation is traced as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from settings import names

from .aws_errors import aws_errors

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

__all__ = ["MetricUnit", "account_region", "logger", "metrics", "step", "tracer"]

logger = Logger(service=names.SERVICE_NAME)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.SERVICE_NAME)


@functools.cache
def tracer() -> Tracer:
    """The one Tracer (made on first use; see the module docstring)."""
    from aws_lambda_powertools.tracing import Tracer

    return Tracer(service=names.SERVICE_NAME)


def account_region(context: Any) -> tuple[str, str]:
    """The function's own account and region, from its ARN (arn:aws:lambda:<region>:<account>:function:<name>)."""
    parts = context.invoked_function_arn.split(":")
    return parts[4], parts[3]


def step(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Wrap a handler: botocore errors become pipeline errors (their class name is what the state
    machine routes on), failures are logged with the error name, metrics flushed, traced."""
    translated = aws_errors(fn)

    @functools.wraps(fn)
    def logged(event: Any, context: Any) -> Any:
        try:
            return translated(event, context)
        except Exception as exc:
            logger.error("step failed", extra={"error": type(exc).__name__, "cause": str(exc)})
            raise

    @functools.cache
    def instrumented() -> Callable[[Any, Any], Any]:
        return logger.inject_lambda_context(tracer().capture_lambda_handler(metrics.log_metrics(logged)))

    @functools.wraps(fn)
    def handler(event: Any, context: Any) -> Any:
        return instrumented()(event, context)

    return handler
