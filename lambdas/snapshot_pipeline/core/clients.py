"""The one place handlers get boto3 clients from.

Handlers call ``client("ec2")``; the plain functions they call take clients as arguments. Tests and
the offline rehearsal (``coldstart.emulator``) install a factory with ``set_factory`` to wrap moto's
clients and inject what moto cannot emulate (SSM agent status, command outcomes, Fast Snapshot
Restore, throttling). Production never calls ``set_factory``.

boto3 is imported on the first ``client()`` call, not with this module: importing it costs more than
the rest of a handler's import, and tests and the rehearsal never need it here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Factory = Callable[[str], Any]
_factory: Factory | None = None


def client(service: str) -> Any:
    if _factory is not None:
        return _factory(service)
    import boto3

    return boto3.client(service, config=_config())


@functools.cache
def _config() -> Any:
    from botocore.config import Config

    # Standard retry mode: the SDK already retries throttling a few times before the state machine's
    # own Retry (with backoff and jitter) takes over.
    return Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)


def set_factory(factory: Factory | None) -> None:
    """Replace how clients are made (tests/rehearsal only); ``None`` restores boto3."""
    global _factory
    _factory = factory
