"""Talking to vLLM: what its answers mean, and turning its token stream into the page's events.

What vLLM sends, read from its source (vllm-project/vllm):
- `vllm/entrypoints/openai/chat_completion/serving.py` (chat_completion_stream_generator): one
  `data: {json}\\n\\n` line per chunk (`object: chat.completion.chunk`, `choices[].delta.content`),
  a first chunk whose delta carries only the role, then, with `stream_options.include_usage`, a
  last chunk with `choices: []` and `usage`, then `data: [DONE]`. An error after the 200 has gone
  out arrives in the stream as `data: {"error": {"message", "type", "code"}}` followed by [DONE].
- `vllm/entrypoints/openai/api_server.py` (setup_server / create_server_socket): the port is
  bound before the engine loads but `listen()` only happens when uvicorn starts serving, so
  while the model loads a connection is *refused*. A Kubernetes Service with no ready endpoint
  refuses too (kube-proxy rejects). Both mean "starting".
- 503 comes from vLLM itself while an elastic-EP scale is in progress
  (`vllm/entrypoints/serve/elastic_ep/middleware.py`, body `{"error": "The model is currently
  scaling. Please try again later."}`), from `/health` when the engine is dead, and from load
  balancers with no ready backend. The chat app treats every 503 as "starting, retry".
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

Backend = Literal["ready", "starting", "error"]
MODELS_PATH = "/v1/models"
CHAT_COMPLETIONS_PATH = "/v1/chat/completions"


class Starting(Exception):
    """vLLM is not serving yet (connection refused or HTTP 503)."""


class UpstreamError(Exception):
    """vLLM answered, but not with what was asked for. `message` is safe to show to a user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify_transport_error(exc: httpx.TransportError, base_url: str) -> Starting | UpstreamError:
    """Refused = the port is not listening yet (starting); anything else is a fault to report."""
    if isinstance(exc, httpx.ConnectError):
        if _caused_by(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
            return Starting()
        if _caused_by(exc, socket.gaierror):
            return UpstreamError(f"cannot resolve the model server's host ({base_url}); check VLLM_BASE_URL")
        return UpstreamError("cannot connect to the model server")
    if isinstance(exc, httpx.ConnectTimeout):
        # A SYN that is dropped rather than refused: usually a NetworkPolicy that does not admit
        # this namespace (the vLLM chart admits namespaces labelled vllm-coldstart/vllm-client=true).
        return UpstreamError("timed out connecting to the model server (is this namespace allowed by its NetworkPolicy?)")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError("the model server did not answer in time")
    return UpstreamError("the connection to the model server failed")


def error_message_from_body(body: bytes, status: int) -> str:
    """A short, user-safe sentence for an upstream error status. 4xx messages from vLLM are about
    the request (e.g. the context length) and are passed on, shortened; 5xx details are not."""
    if 400 <= status < 500:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        detail = None
        if isinstance(data, dict):
            err = data.get("error", data)
            detail = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
        if isinstance(detail, str) and detail.strip():
            detail = " ".join(detail.split())
            return f"the model server rejected the request (HTTP {status}): {detail[:200]}"
        return f"the model server rejected the request (HTTP {status})"
    return f"the model server failed (HTTP {status}); see its logs"


async def fetch_model_ids(client: httpx.AsyncClient, base_url: str, headers: dict[str, str], timeout: httpx.Timeout) -> list[str]:
    """The model ids vLLM serves (GET /v1/models, non-empty); raises Starting or UpstreamError."""
    try:
        resp = await client.get(base_url + MODELS_PATH, headers=headers, timeout=timeout)
    except httpx.TransportError as exc:
        raise classify_transport_error(exc, base_url) from exc
    if resp.status_code == 503:
        raise Starting()
    if resp.status_code != 200:
        raise UpstreamError(error_message_from_body(resp.content, resp.status_code), resp.status_code)
    try:
        ids = [card["id"] for card in resp.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise UpstreamError("the model server's /v1/models answer is not a model list") from None
    if not ids or not all(isinstance(i, str) and i for i in ids):
        raise UpstreamError("the model server's /v1/models answer has no model in it")
    return ids


def sse(event: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event; the JSON has no newline, so one data line is enough."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass
class Meter:
    """Times one answer. t0 is when the request went to vLLM; times are time.perf_counter()."""

    t0: float
    first: float | None = None
    deltas: int = 0
    usage_tokens: int | None = None
    finish_reason: str | None = None
    model: str | None = None

    def on_delta(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.deltas += 1

    def summary(self, now: float) -> dict[str, Any]:
        """TTFT = request sent -> first non-empty text; tokens/s = completion tokens over the time
        from the first token to the end (the decode rate a reader sees), None when unmeasurable."""
        tokens = self.usage_tokens if self.usage_tokens is not None else self.deltas
        ttft_ms = None if self.first is None else round((self.first - self.t0) * 1000, 1)
        decode_s = None if self.first is None else now - self.first
        tokens_per_s = round(tokens / decode_s, 1) if decode_s and decode_s > 0 and tokens > 0 else None
        return {
            "model": self.model,
            "ttft_ms": ttft_ms,
            "tokens_per_s": tokens_per_s,
            "total_ms": round((now - self.t0) * 1000, 1),
            "completion_tokens": tokens,
            "completion_tokens_source": "usage" if self.usage_tokens is not None else "counted",
            "finish_reason": self.finish_reason,
        }


class MalformedStream(UpstreamError):
    pass


def parse_chunk(line: str) -> dict[str, Any] | Literal["done"] | None:
    """One line of vLLM's event stream: a chunk, "done" for [DONE], None for anything to skip
    (blank lines, comments, other fields). Raises MalformedStream for a data line that is not JSON."""
    if not line.startswith("data:"):
        return None
    payload = line[5:]
    if payload.startswith(" "):
        payload = payload[1:]
    if payload.strip() == "[DONE]":
        return "done"
    try:
        chunk = json.loads(payload)
    except ValueError:
        raise MalformedStream("the model server sent a malformed stream (a data line that is not JSON)") from None
    if not isinstance(chunk, dict):
        raise MalformedStream("the model server sent a malformed stream (a chunk that is not an object)")
    return chunk


def stream_error(chunk: dict[str, Any]) -> UpstreamError | None:
    """vLLM's in-stream error, `{"error": {...}}` (current) or `{"object": "error", ...}` (older)."""
    err = chunk.get("error")
    if err is None and chunk.get("object") == "error":
        err = chunk
    if err is None:
        return None
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) else None
    if status is not None and 400 <= status < 500:
        message = err.get("message") if isinstance(err, dict) else None
        text = " ".join(str(message).split())[:200] if message else ""
        return UpstreamError(f"the model server stopped the answer (HTTP {status}){': ' + text if text else ''}", status)
    return UpstreamError(f"the model server failed while answering{f' (HTTP {status})' if status else ''}; see its logs", status)


async def relay(lines: AsyncIterator[str], meter: Meter) -> AsyncIterator[str]:
    """vLLM's chunks in, the page's events out: `delta` {text} per piece of text, then `done`
    with the metrics; raises UpstreamError (MalformedStream included) on a bad or broken stream."""
    async for line in lines:
        chunk = parse_chunk(line)
        if chunk is None:
            continue
        if chunk == "done":
            return
        if (err := stream_error(chunk)) is not None:
            raise err
        if isinstance(chunk.get("model"), str):
            meter.model = chunk["model"]
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            meter.usage_tokens = usage["completion_tokens"]
        choices = chunk.get("choices")
        if choices is None:
            choices = []
        if not isinstance(choices, list):
            raise MalformedStream("the model server sent a malformed stream (choices is not a list)")
        for choice in choices:
            if not isinstance(choice, dict):
                raise MalformedStream("the model server sent a malformed stream (a choice is not an object)")
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                meter.on_delta(time.perf_counter())
                yield sse("delta", {"text": text})
            if isinstance(choice.get("finish_reason"), str):
                meter.finish_reason = choice["finish_reason"]
    raise MalformedStream("the model server's stream ended before [DONE]")
