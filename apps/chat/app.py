"""The chat API: `POST /api/chat` streams vLLM's answer as Server-Sent Events, with its metrics.

Events on the stream, in order: `start` {model}, `delta` {text} (any number), then either `done`
{model, ttft_ms, tokens_per_s, total_ms, completion_tokens, completion_tokens_source,
finish_reason} or `error` {status: "error", upstream_status, message}. Before the stream starts:
413 (body too large), 422 (invalid or over the message/character limits), 429 (too many answers
at once) and 503 {status: "starting"} (vLLM is loading; Retry-After says when to ask again), all
JSON. When the client goes away mid-answer the request to vLLM is closed, which makes vLLM abort
the generation (its `with_cancellation` decorator, chat_completion/api_router.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.chat.config import Settings
from apps.chat.logs import LOGGER_NAME
from apps.chat.upstream import (
    CHAT_COMPLETIONS_PATH,
    Backend,
    Meter,
    Starting,
    UpstreamError,
    classify_transport_error,
    error_message_from_body,
    fetch_model_ids,
    relay,
    sse,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Strict: scripts, styles and fetches from this origin only, nothing inline, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
PROBE_PATHS = ("/healthz", "/readyz")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store", **(headers or {})})


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes whether or not Content-Length says so."""
    too_large = Rejected(413, f"The request body is larger than this service accepts ({limit} bytes).")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise too_large
    return bytes(body)


def validate(body: bytes, settings: Settings) -> ChatRequest:
    try:
        data = json.loads(body)
    except ValueError:
        raise Rejected(422, "The request body is not JSON.") from None
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        # Location and reason only: pydantic's own text repeats the input, which is the prompt.
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Rejected(422, f"Invalid request: {where}: {first['msg']}.") from None
    if len(request.messages) > settings.max_messages:
        raise Rejected(422, f"The conversation has {len(request.messages)} messages; this service accepts at most "
                            f"{settings.max_messages}. Start a new conversation.")
    chars = sum(len(m.content) for m in request.messages)
    if chars > settings.max_chars:
        raise Rejected(422, f"The conversation has {chars} characters; this service accepts at most "
                            f"{settings.max_chars}. Shorten it or start a new conversation.")
    return request


class Slots:
    """At most `limit` answers stream at once; over it the caller gets 429 straight away."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_acquire(self) -> Callable[[], None] | None:
        if self.active >= self.limit:
            return None
        self.active += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.active -= 1

        return release


class Upstream:
    """vLLM as this app sees it: the client, the model name, and a probe for /readyz and /api/info."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.base_url = settings.vllm_base_url
        self.headers = {"authorization": f"Bearer {settings.vllm_api_key}"} if settings.vllm_api_key else {}
        self.probe_timeout = httpx.Timeout(5.0, connect=settings.connect_timeout_s)
        self._discovered: str | None = None

    async def model_name(self) -> str:
        if self.settings.served_model_name:
            return self.settings.served_model_name
        if self._discovered is None:
            self._discovered = (await fetch_model_ids(self.client, self.base_url, self.headers, self.probe_timeout))[0]
        return self._discovered

    def forget_model(self) -> None:
        """vLLM said the model does not exist (restarted with another one?): discover it again."""
        self._discovered = None

    async def probe(self) -> tuple[Backend, str | None, str | None]:
        """(state, model, message): "ready", "starting" (refused / 503) or "error" (with a message)."""
        known = self.settings.served_model_name or self._discovered
        try:
            ids = await fetch_model_ids(self.client, self.base_url, self.headers, self.probe_timeout)
        except Starting:
            return "starting", known, "The model server is starting (loading the model)."
        except UpstreamError as exc:
            return "error", known, exc.message
        wanted = self.settings.served_model_name
        if wanted and wanted not in ids:
            return "error", wanted, f"SERVED_MODEL_NAME={wanted} is not served; the model server serves {', '.join(ids)}."
        if not wanted:
            self._discovered = ids[0]
        return "ready", wanted or ids[0], None


class SecurityHeadersAndAccessLog:
    """Adds the security headers to every response and logs one JSON line per request
    (method, path, status, duration; never a body). Probe requests log at DEBUG."""

    def __init__(self, app: ASGIApp, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            path = scope.get("path", "")
            level = logging.DEBUG if path in PROBE_PATHS else logging.INFO
            self.logger.log(level, "request", extra={"event": "http", "method": scope.get("method"), "path": path,
                                                     "status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1)})


class CleanupStreamingResponse(StreamingResponse):
    """A StreamingResponse that watches for the client going away whatever ASGI spec version the
    server speaks (Starlette only does for < 2.4; from 2.4 it waits for a failing send, which never
    comes while vLLM is silent, e.g. during a long prefill), and always runs `cleanup` at the end."""

    def __init__(self, content: AsyncIterator[str], cleanup: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._content = content
        self._cleanup = cleanup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:  # the client went away (how ASGI 2.4 servers say it)
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._content, "aclose", None)
                if aclose is not None:
                    await aclose()
                await self._cleanup()


SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


def create_app(settings: Settings) -> FastAPI:
    logger = logging.getLogger(LOGGER_NAME)
    slots = Slots(settings.max_concurrency)
    retry_after = {"retry-after": str(settings.retry_after_s)}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.upstream_timeout_s, connect=settings.connect_timeout_s, write=10.0, pool=5.0)
        limits = httpx.Limits(max_connections=settings.max_concurrency + 4, max_keepalive_connections=settings.max_concurrency)
        # trust_env=False: in-cluster calls to the vLLM Service never go through an HTTP(S)_PROXY.
        async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
            app.state.upstream = Upstream(settings, client)
            logger.info("chat app started", extra={"event": "startup", "vllm_base_url": settings.vllm_base_url,
                                                   "served_model_name": settings.served_model_name,
                                                   "max_concurrency": settings.max_concurrency, "max_tokens": settings.max_tokens})
            yield

    app = FastAPI(title="vllm-coldstart chat", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeadersAndAccessLog, logger=logger)

    def starting_response() -> JSONResponse:
        return _json(503, {"status": "starting", "retry_after_s": settings.retry_after_s,
                           "message": f"The model is starting (vLLM is loading it). Try again in {settings.retry_after_s} s."},
                     retry_after)

    def error_stream(status: int, error: UpstreamError) -> StreamingResponse:
        async def one_event() -> AsyncIterator[str]:
            yield sse("error", {"status": "error", "upstream_status": error.status, "message": error.message})

        return StreamingResponse(one_event(), status_code=status, media_type="text/event-stream", headers=SSE_HEADERS)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return _json(200, {"status": "ok"})

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        state, model, message = await request.app.state.upstream.probe()
        if state == "ready":
            return _json(200, {"status": "ready", "model": model})
        if state == "starting":
            return _json(503, {"status": "starting", "model": model, "message": message}, retry_after)
        return _json(503, {"status": "error", "model": model, "message": message})

    @app.get("/api/info")
    async def info(request: Request) -> JSONResponse:
        state, model, message = await request.app.state.upstream.probe()
        return _json(200, {"model": model, "backend": state, "message": message, "retry_after_s": settings.retry_after_s,
                           "limits": {"max_messages": settings.max_messages, "max_chars": settings.max_chars,
                                      "max_tokens": settings.max_tokens}})

    @app.post("/api/chat")
    async def chat(request: Request) -> Response:
        try:
            chat_request = validate(await read_body(request, settings.max_body_bytes), settings)
        except Rejected as exc:
            status = "too_large" if exc.status == 413 else "invalid"
            return _json(exc.status, {"status": status, "message": exc.message})
        release = slots.try_acquire()
        if release is None:
            return _json(429, {"status": "busy", "retry_after_s": 1,
                               "message": f"{settings.max_concurrency} answers are being generated already. Try again in a moment."},
                         {"retry-after": "1"})
        upstream: Upstream = request.app.state.upstream
        max_tokens = min(chat_request.max_tokens or settings.max_tokens, settings.max_tokens)
        facts: dict[str, Any] = {"event": "chat", "messages": len(chat_request.messages),
                                 "prompt_chars": sum(len(m.content) for m in chat_request.messages), "max_tokens": max_tokens}
        try:
            model = await upstream.model_name()
            payload = {"model": model, "messages": [m.model_dump() for m in chat_request.messages], "stream": True,
                       "stream_options": {"include_usage": True}, "max_completion_tokens": max_tokens}
            meter = Meter(t0=time.perf_counter(), model=model)
            resp = await upstream.client.send(
                upstream.client.build_request("POST", upstream.base_url + CHAT_COMPLETIONS_PATH, json=payload, headers=upstream.headers),
                stream=True)
        except (Starting, UpstreamError, httpx.TransportError) as exc:
            release()
            if isinstance(exc, httpx.TransportError):
                exc = classify_transport_error(exc, upstream.base_url)
            if isinstance(exc, Starting):
                logger.info("model starting", extra={**facts, "outcome": "starting"})
                return starting_response()
            logger.warning("upstream failed", extra={**facts, "outcome": "upstream_error", "upstream_status": exc.status})
            return error_stream(502, exc)
        except BaseException:
            release()
            raise

        if resp.status_code != 200:
            try:
                body = b""
                if resp.status_code != 503:
                    async for piece in resp.aiter_bytes():
                        body += piece
                        if len(body) > 8192:
                            break
            except httpx.TransportError:
                pass
            finally:
                with anyio.CancelScope(shield=True):
                    await resp.aclose()
                release()
            if resp.status_code == 503:
                logger.info("model starting", extra={**facts, "outcome": "starting", "upstream_status": 503})
                return starting_response()
            if resp.status_code == 404:
                upstream.forget_model()
            logger.warning("upstream failed", extra={**facts, "outcome": "upstream_error", "upstream_status": resp.status_code})
            return error_stream(502, UpstreamError(error_message_from_body(body, resp.status_code), resp.status_code))

        finished = False

        async def finish(outcome: str, **more: Any) -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            release()  # before the close, so whoever sees the connection close may use the slot
            with anyio.CancelScope(shield=True):
                await resp.aclose()  # closes the connection mid-stream: vLLM aborts the generation
            logger.info("chat finished", extra={**facts, "outcome": outcome, **more})

        async def events() -> AsyncIterator[str]:
            outcome, more = "client_disconnected", {}
            try:
                yield sse("start", {"model": model})
                try:
                    async for event in relay(resp.aiter_lines(), meter):
                        yield event
                except httpx.TimeoutException:
                    raise UpstreamError(f"the model server sent nothing for {settings.upstream_timeout_s:g} s") from None
                except httpx.TransportError:
                    raise UpstreamError("the connection to the model server broke during the answer") from None
                summary = meter.summary(time.perf_counter())
                outcome, more = "ok", {k: summary[k] for k in ("ttft_ms", "tokens_per_s", "total_ms", "completion_tokens")}
                yield sse("done", summary)
            except UpstreamError as exc:
                outcome, more = "upstream_error", {"upstream_status": exc.status}
                yield sse("error", {"status": "error", "upstream_status": exc.status, "message": exc.message})
            except (asyncio.CancelledError, GeneratorExit):
                outcome = "client_disconnected"
                raise
            finally:
                await finish(outcome, **more)

        return CleanupStreamingResponse(events(), cleanup=lambda: finish("client_disconnected"),
                                        media_type="text/event-stream", headers=SSE_HEADERS)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
