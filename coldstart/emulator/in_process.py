"""Running the handlers in-process: moto's Lambda invoke calls the deployed handler string in this process."""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

# The function whose handler is running in this thread (set by run_handler), for ApiCall.function.
CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("emulator_current_function", default=None)


class _Context:
    """The parts of the Lambda context object the handlers and Powertools read."""

    def __init__(self, function_name: str, function_arn: str, timeout: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "emulator"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@contextlib.contextmanager
def patched_env(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or with None, remove) variables; restore exactly the previous values afterwards, one key at a time."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        _apply(values)
        yield
    finally:
        _apply(saved)


def _apply(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_ENV_LOCK = threading.RLock()  # handlers read os.environ: one in-process invocation at a time


def run_handler(handler: str, event: Any, *, environment: dict[str, str], function_name: str, function_arn: str,
                timeout: int = 60) -> tuple[Any, bool]:
    """Import and call a deployed handler string in this process; returns (payload, errored)."""
    module_name, _, attr = handler.rpartition(".")
    fn = getattr(importlib.import_module(module_name), attr)
    with _ENV_LOCK:
        token = CURRENT_FUNCTION.set(function_name)
        overlay: dict[str, str | None] = {**{k: str(v) for k, v in environment.items()}, "POWERTOOLS_TRACE_DISABLED": "true"}
        # Only the keys set here are put back, each with one call: os.environ.clear() pops keys one by one
        # and raced another thread touching os.environ (KeyError('PIPELINE_CONFIG') failed a run under load).
        with patched_env(overlay):
            try:
                return fn(event, _Context(function_name, function_arn, timeout)), False
            except Exception as exc:  # noqa: BLE001 - reported to the caller as a Lambda function error
                return {"errorType": type(exc).__name__, "errorMessage": str(exc)}, True
            finally:
                CURRENT_FUNCTION.reset(token)


@contextlib.contextmanager
def in_process_lambdas() -> Iterator[None]:
    """Patch moto's ``LambdaFunction.invoke(body, request_headers, response_headers)`` to run the handler here."""
    from unittest import mock

    from moto.awslambda.models import LambdaFunction

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        event = json.loads(body) if body else {}
        payload, errored = run_handler(self.handler, event, environment=self.environment_vars, function_name=self.function_name,
                                       function_arn=self.function_arn, timeout=int(self.timeout))
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(payload).encode("utf-8")

    with mock.patch.object(LambdaFunction, "invoke", invoke), contextlib.ExitStack() as stack:
        _make_interpreter_clients_under_the_lock(stack)
        yield


def _make_interpreter_clients_under_the_lock(stack: contextlib.ExitStack) -> None:
    """moto's interpreter makes a boto3 client for each task in its execution thread, and making one iterates the
    whole environment (urllib's getproxies: ``os.environ.items()``), while another execution's handler, in another
    thread, restores its variables: KeyError('POWERTOOLS_SERVICE_NAME') failed a back-to-back run under load. So
    clients are made under the handlers' lock (moto/stepfunctions/parser/asl/utils/boto_client.py boto_client_for,
    imported by name into lambda_eval_utils and the service-integration modules)."""
    import sys
    from unittest import mock

    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def locked(*args: Any, **kwargs: Any) -> Any:
        with _ENV_LOCK:
            return original(*args, **kwargs)

    importers = {boto_client, lambda_eval_utils, *(module for name, module in list(sys.modules.items())
                                                   if name.startswith("moto.stepfunctions.parser.")
                                                   and getattr(module, "boto_client_for", None) is original)}
    for module in importers:
        stack.enter_context(mock.patch.object(module, "boto_client_for", locked))
