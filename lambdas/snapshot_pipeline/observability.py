"""Powertools Logger, Tracer and Metrics, created once per module load (shared by all handlers)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from settings import names

logger = Logger(service=names.SERVICE_NAME)
tracer = Tracer(service=names.SERVICE_NAME)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.SERVICE_NAME)


def account_region(context: Any) -> tuple[str, str]:
    """The function's own account and region, from its ARN (arn:aws:lambda:<region>:<account>:function:<name>)."""
    parts = context.invoked_function_arn.split(":")
    return parts[4], parts[3]


def step(fn: Any) -> Any:
    """Wrap a handler: botocore errors become pipeline errors (their class name is what the state
    machine routes on), failures are logged with the error name, metrics flushed, traced."""
    import functools

    from .aws_errors import aws_errors

    translated = aws_errors(fn)

    @functools.wraps(fn)
    def logged(event: Any, context: Any) -> Any:
        try:
            return translated(event, context)
        except Exception as exc:
            logger.error("step failed", extra={"error": type(exc).__name__, "cause": str(exc)})
            raise

    return logger.inject_lambda_context(tracer.capture_lambda_handler(metrics.log_metrics(logged)))
