"""Fixtures for the chat app tests: the fake vLLM (fake_vllm.py) and the real app in front of it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from chat_harness import serve_chat
from fake_vllm import FakeVllm

from apps.chat.config import Settings


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    with FakeVllm() as server:
        yield server


@pytest.fixture
def chat_app() -> Iterator[Callable[..., str]]:
    """chat_app(vllm_base_url=..., **settings) -> the base URL of a running chat app."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> str:
            settings = dataclasses.replace(Settings(), host="127.0.0.1", port=0, **overrides)
            return stack.enter_context(serve_chat(settings))

        yield start
