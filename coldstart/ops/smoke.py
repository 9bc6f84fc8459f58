"""smoke: one streamed chat completion against the served model, with its time to first token.

Either straight against vLLM's OpenAI-compatible server (`/v1/chat/completions`, the model from
`GET /v1/models` unless given) or through the demo chat app (`/api/chat`, apps/chat/app.py, which
picks the model itself). Standard library only (urllib), so the CLI needs no HTTP client.

Failures are one line naming the URL, what came back and what to do: `ModelStarting` while vLLM
answers 503 (or the chat app says "starting"), `SmokeFailed` for anything else. While vLLM loads
the model its port refuses connections (it listens only once the engine is up), so "connection
refused" says that too.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from coldstart.ops.errors import OperatorError

ApiPath = Literal["/v1/chat/completions", "/api/chat"]
VLLM_CHAT_PATH: ApiPath = "/v1/chat/completions"
CHAT_APP_PATH: ApiPath = "/api/chat"
DEFAULT_PROMPT = "Say hello in five words."
_ERROR_BODY_LIMIT = 8192


class SmokeFailed(OperatorError):
    """The smoke request did not produce an answer; the message says where, what and what to do."""


class ModelStarting(SmokeFailed):
    """The server is up but the model is not ready yet (HTTP 503); try again later."""


@dataclass(frozen=True)
class SmokeResult:
    url: str
    model: str
    text: str
    ttft_ms: float
    tokens_per_s: float | None  # completion tokens over the time from the first token to the end
    total_ms: float
    completion_tokens: int
    completion_tokens_source: Literal["usage", "counted"]


def _open(request: urllib.request.Request, url: str, timeout: float) -> Any:
    """urlopen with the failures turned into SmokeFailed / ModelStarting."""
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) URL checked by run_smoke
    except urllib.error.HTTPError as exc:
        body = exc.read(_ERROR_BODY_LIMIT)
        retry_after = exc.headers.get("retry-after") if exc.headers else None
        if exc.code == 503:
            wait = f"in {retry_after} s" if retry_after else "in a minute"
            raise ModelStarting(f"{url} answered 503: the model is still starting; try again {wait} "
                                f"(`kubectl get pods` shows the vLLM pod Ready when it is)") from None
        raise SmokeFailed(f"{url} answered HTTP {exc.code}{_detail(body)}; "
                          f"{'check the request and the served model name' if exc.code < 500 else 'see the vLLM pod logs (kubectl logs)'}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise SmokeFailed(f"{url}: connection refused; nothing listens there yet (vLLM listens only once the model is "
                              f"loaded) or the port-forward is not running") from None
        if isinstance(reason, socket.gaierror):
            raise SmokeFailed(f"{url}: cannot resolve the host ({reason.strerror}); check the URL") from None
        if isinstance(reason, TimeoutError):
            raise SmokeFailed(f"{url}: no answer within the timeout; check the URL and that the service is reachable") from None
        raise SmokeFailed(f"{url}: cannot connect ({reason}); check the URL and that the service is reachable") from None
    except TimeoutError:
        raise SmokeFailed(f"{url}: no answer within the timeout; raise --timeout or check the vLLM pod") from None
    except ConnectionError as exc:
        raise SmokeFailed(f"{url}: the connection failed ({exc.__class__.__name__}); check that the service is reachable") from None


def _detail(body: bytes) -> str:
    """The error message in a JSON error body, or in the chat app's `error` event."""
    text = body.decode("utf-8", errors="replace")
    if text.startswith("event:"):
        for name, data in _events(iter(text.splitlines())):
            if name == "error":
                text = data
                break
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    err = data.get("error", data) if isinstance(data, dict) else None
    message = err.get("message") if isinstance(err, dict) else err if isinstance(err, str) else None
    return f" ({' '.join(str(message).split())[:200]})" if message else ""


def _lines(response: Any) -> Iterator[str]:
    for raw in response:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) per Server-Sent Event; the name is "message" when the event has none."""
    name, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    if data:
        yield name, "\n".join(data)


def _discover_model(base_url: str, headers: dict[str, str], timeout: float) -> str:
    url = base_url + "/v1/models"
    with _open(urllib.request.Request(url, headers=headers), url, timeout) as response:
        try:
            return str(json.load(response)["data"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise SmokeFailed(f"{url} answered without a model in it; pass --model with the served model name") from None


def run_smoke(base_url: str, *, model: str | None = None, prompt: str = DEFAULT_PROMPT, max_tokens: int = 32,
              timeout: float = 60.0, api_path: ApiPath = VLLM_CHAT_PATH, api_key: str | None = None) -> SmokeResult:
    """One streamed chat completion; TTFT is from sending the request to the first piece of text.

    `timeout` bounds each wait for the server (connecting, and each silence in the stream).
    `api_key` is sent as a bearer token to vLLM started with --api-key; never printed."""
    base_url = base_url.rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise SmokeFailed(f"{base_url!r} is not an http:// or https:// URL; pass e.g. http://localhost:8000")
    if api_path not in (VLLM_CHAT_PATH, CHAT_APP_PATH):
        raise SmokeFailed(f"api_path must be {VLLM_CHAT_PATH} (vLLM) or {CHAT_APP_PATH} (the chat app), not {api_path!r}")
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url + api_path
    messages = [{"role": "user", "content": prompt}]
    if api_path == VLLM_CHAT_PATH:
        model = model or _discover_model(base_url, headers, timeout)
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}, "max_completion_tokens": max_tokens}
    else:
        body = {"messages": messages, "max_tokens": max_tokens}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={**headers, "content-type": "application/json", "accept": "text/event-stream"})
    started = time.perf_counter()
    with _open(request, url, timeout) as response:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            raise SmokeFailed(f"{url} answered {content_type or 'no content type'} instead of an event stream; "
                              f"is {api_path} the right path for this server?")
        try:
            if api_path == VLLM_CHAT_PATH:
                return _read_vllm(_events(_lines(response)), url, model or "", started)
            return _read_chat_app(_events(_lines(response)), url, started)
        except TimeoutError:
            raise SmokeFailed(f"{url}: the stream went silent for {timeout:g} s; raise --timeout or check the vLLM pod") from None
        except (ConnectionError, OSError) as exc:
            raise SmokeFailed(f"{url}: the stream broke off ({exc.__class__.__name__}); see the vLLM pod logs") from None


def _finish(url: str, model: str, pieces: list[str], started: float, first: float | None,
            usage_tokens: int | None) -> SmokeResult:
    end = time.perf_counter()
    if first is None:
        raise SmokeFailed(f"{url} streamed no text; see the vLLM pod logs")
    tokens = usage_tokens if usage_tokens is not None else len(pieces)
    decode_s = end - first
    return SmokeResult(url=url, model=model, text="".join(pieces), ttft_ms=round((first - started) * 1000, 1),
                       tokens_per_s=round(tokens / decode_s, 1) if decode_s > 0 and tokens > 0 else None,
                       total_ms=round((end - started) * 1000, 1), completion_tokens=tokens,
                       completion_tokens_source="usage" if usage_tokens is not None else "counted")


def _read_vllm(events: Iterator[tuple[str, str]], url: str, model: str, started: float) -> SmokeResult:
    """vLLM's chunks (chat_completion_stream_generator): text deltas, a usage chunk, [DONE]."""
    pieces: list[str] = []
    first: float | None = None
    usage_tokens: int | None = None
    for _name, data in events:
        if data.strip() == "[DONE]":
            return _finish(url, model, pieces, started, first, usage_tokens)
        try:
            chunk = json.loads(data)
        except ValueError:
            raise SmokeFailed(f"{url} sent a malformed stream (a data line that is not JSON)") from None
        if not isinstance(chunk, dict):
            raise SmokeFailed(f"{url} sent a malformed stream (a chunk that is not an object)")
        if "error" in chunk or chunk.get("object") == "error":
            err = chunk.get("error", chunk)
            code = err.get("code") if isinstance(err, dict) else None
            raise SmokeFailed(f"{url} failed during the answer (code {code}){_detail(json.dumps(chunk).encode())}; "
                              f"see the vLLM pod logs")
        model = chunk.get("model") or model
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            usage_tokens = usage["completion_tokens"]
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
            if isinstance(text, str) and text:
                if first is None:
                    first = time.perf_counter()
                pieces.append(text)
    raise SmokeFailed(f"{url}: the stream ended before [DONE]; see the vLLM pod logs")


def _read_chat_app(events: Iterator[tuple[str, str]], url: str, started: float) -> SmokeResult:
    """The chat app's events (apps/chat/app.py): start, delta..., then done or error."""
    pieces: list[str] = []
    first: float | None = None
    model = ""
    for name, data in events:
        try:
            payload = json.loads(data)
        except ValueError:
            raise SmokeFailed(f"{url} sent a malformed event stream") from None
        if name == "start":
            model = payload.get("model") or model
        elif name == "delta":
            if first is None:
                first = time.perf_counter()
            pieces.append(payload.get("text", ""))
        elif name == "error":
            raise SmokeFailed(f"{url} reported: {payload.get('message')} (upstream status {payload.get('upstream_status')}); "
                              f"see the chat app and vLLM pod logs")
        elif name == "done":
            result = _finish(url, payload.get("model") or model, pieces, started, first, None)
            # the server's own counts: it saw vLLM's usage chunk, which this side does not
            tokens = payload.get("completion_tokens")
            if isinstance(tokens, int):
                source = "usage" if payload.get("completion_tokens_source") == "usage" else "counted"
                decode_s = (result.total_ms - result.ttft_ms) / 1000
                result = SmokeResult(**{**result.__dict__, "completion_tokens": tokens, "completion_tokens_source": source,
                                        "tokens_per_s": round(tokens / decode_s, 1) if decode_s > 0 and tokens > 0 else None})
            return result
    raise SmokeFailed(f"{url}: the stream ended without a done event; see the chat app logs")


def format_result(result: SmokeResult) -> str:
    """One line: model | TTFT | tokens/s | total | completion tokens (and where the count came from)."""
    tps = "n/a" if result.tokens_per_s is None else f"{result.tokens_per_s:.1f}"
    return (f"model {result.model} | TTFT {result.ttft_ms:.0f} ms | {tps} tokens/s | total {result.total_ms:.0f} ms | "
            f"{result.completion_tokens} tokens ({result.completion_tokens_source})")
