"""A local stand-in for vLLM's OpenAI-compatible server, written from vLLM's own source
(github.com/vllm-project/vllm), for the chat app and smoke tests. Plain http.server on 127.0.0.1,
HTTP/1.1 with chunked transfer encoding like uvicorn's, ordered with threading.Events only.

What it copies, and from where:
- `vllm/entrypoints/openai/chat_completion/serving.py`, chat_completion_stream_generator: every
  chunk is `data: <ChatCompletionStreamResponse.model_dump_json(exclude_unset=True)>\\n\\n`; the
  first chunk's delta is `{"role": "assistant", "content": ""}`; text chunks carry
  `delta.content`; the last text chunk carries `finish_reason` (and `stop_reason`); with
  `stream_options.include_usage` a final chunk has `choices: []` and `usage` {prompt_tokens,
  total_tokens, completion_tokens} (dumped with exclude_none); the stream always ends with
  `data: [DONE]\\n\\n`. An error once streaming has begun is sent in the stream as
  `data: {"error": {"message", "type", "param", "code"}}` and then [DONE].
- `vllm/entrypoints/openai/chat_completion/api_router.py`: errors before streaming are a JSON
  ErrorResponse `{"error": {"message", "type", "param", "code"}}` with status = code; the stream
  is a StreamingResponse with media type text/event-stream.
- `vllm/entrypoints/openai/engine/protocol.py`: ErrorInfo, ModelCard/ModelList (GET /v1/models is
  `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by": "vllm", "root",
  "parent", "max_model_len", "permission"}]}`).
- `vllm/entrypoints/openai/api_server.py`, setup_server/create_server_socket: the port is bound
  before the engine is built and only listened on when uvicorn starts, so while the model loads
  a client's connection is refused. `FakeVllm.bound_not_listening()` does exactly that, and
  `listen()` is the moment the engine is ready.
- `vllm/entrypoints/serve/elastic_ep/middleware.py`, ScalingMiddleware: the 503 vLLM itself
  answers to every HTTP request while scaling, body `{"error": "The model is currently scaling.
  Please try again later."}`; load balancers in front of a not-ready pod answer 503 too.
  `mode = "503"` answers that to every request.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "mistral-7b-awq"
SCALING_503 = {"error": "The model is currently scaling. Please try again later."}
SAFETY_S = 30.0  # an upper bound for waits that should end at once; never a synchronisation


@dataclass
class Script:
    """How the next chat completions answer. Defaults: a normal streamed answer."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", ",", " cold", " start", "!"])
    usage_tokens: int | None = None  # completion_tokens in the usage chunk; None = len(pieces)
    honour_include_usage: bool = True  # False: no usage chunk even when asked (older servers)
    status: int = 200  # not 200: answer this status with `error_body` instead of streaming
    error_body: dict[str, Any] | None = None
    hold_after: int | None = None  # after this many pieces: set `held`, wait for `release`
    wait_for_disconnect: bool = False  # while held: watch the socket, set `saw_disconnect` when closed
    raw_after_role: list[bytes] | None = None  # sent verbatim after the role chunk, instead of pieces
    stream_error: dict[str, Any] | None = None  # vLLM's in-stream error after the pieces, then [DONE]
    end_without_done: bool = False  # close the stream after the pieces without usage or [DONE]
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    saw_disconnect: threading.Event = field(default_factory=threading.Event)


def model_list(model: str) -> dict[str, Any]:
    return {"object": "list", "data": [{
        "id": model, "object": "model", "created": int(time.time()), "owned_by": "vllm", "root": f"/models/{model}",
        "parent": None, "max_model_len": 4096,
        "permission": [{"id": "modelperm-0", "object": "model_permission", "created": int(time.time()),
                        "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                        "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                        "organization": "*", "group": None, "is_blocking": False}],
    }]}


def error_response(message: str, code: int, err_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        fake = self.server.fake
        fake.record(self, None)
        if fake.mode == "503":
            self._json(503, SCALING_503)
        elif self.path == "/v1/models":
            self._json(200, model_list(fake.model))
        elif self.path == "/health":
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        fake.record(self, body)
        if fake.mode == "503":
            self._json(503, SCALING_503)
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"detail": "Not Found"})
            return
        script = fake.script
        if script.status != 200:
            self._json(script.status, script.error_body or error_response("failed", script.status, "InternalServerError"))
            return
        if body.get("model") != fake.model:
            self._json(404, error_response(f"The model `{body.get('model')}` does not exist.", 404, "NotFoundError"))
            return
        self.stream(body, script)

    def stream(self, request: dict[str, Any], script: Script) -> None:
        fake = self.server.fake
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        rid, created = "chatcmpl-fake0001", int(time.time())

        def chunk(choices: list[dict[str, Any]], **more: Any) -> None:
            data = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": fake.model, "choices": choices, **more}
            self._chunk(b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n")

        try:
            chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])
            if script.raw_after_role is not None:
                for raw in script.raw_after_role:
                    self._chunk(raw)
                self.wfile.write(b"0\r\n\r\n")
                return
            for i, piece in enumerate(script.pieces):
                if script.hold_after is not None and i == script.hold_after:
                    script.held.set()
                    if script.wait_for_disconnect:
                        self._watch_for_close(script)
                        return
                    script.release.wait(SAFETY_S)
                last = i == len(script.pieces) - 1
                choice: dict[str, Any] = {"index": 0, "delta": {"content": piece}, "logprobs": None,
                                          "finish_reason": "stop" if last and not script.end_without_done else None}
                if last and not script.end_without_done:
                    choice["stop_reason"] = None
                chunk([choice])
            if script.hold_after is not None and script.hold_after >= len(script.pieces):
                script.held.set()
                script.release.wait(SAFETY_S)
            if script.end_without_done:
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True
                return
            if script.stream_error is not None:
                self._chunk(b"data: " + json.dumps(script.stream_error).encode() + b"\n\n")
            else:
                options = request.get("stream_options") or {}
                if options.get("include_usage") and script.honour_include_usage:
                    completion = len(script.pieces) if script.usage_tokens is None else script.usage_tokens
                    chunk([], usage={"prompt_tokens": 11, "total_tokens": 11 + completion, "completion_tokens": completion})
            self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            script.saw_disconnect.set()
            self.close_connection = True

    def _watch_for_close(self, script: Script) -> None:
        """Block until the client closes this connection (recv returns b"" or the peer resets)."""
        self.connection.settimeout(SAFETY_S)
        try:
            while self.connection.recv(4096):
                pass
            script.saw_disconnect.set()
        except (ConnectionResetError, BrokenPipeError):
            script.saw_disconnect.set()
        except TimeoutError:
            pass
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeVllm


class FakeVllm:
    """`with FakeVllm() as fake:` serves on 127.0.0.1 at `fake.url`; `FakeVllm.bound_not_listening()`
    starts refusing connections, like vLLM while it loads the model, until `fake.listen()`."""

    def __init__(self, *, model: str = MODEL, listening: bool = True) -> None:
        self.model = model
        self.mode = "ready"  # or "503"
        self.script = Script()
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []  # (method, path, headers, json body)
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if listening:
            self.listen()

    @classmethod
    def bound_not_listening(cls, **kwargs: Any) -> FakeVllm:
        return cls(listening=False, **kwargs)

    def listen(self) -> None:
        """The engine is ready: listen on the bound port and serve (what vLLM's serve_http does)."""
        server = _Server(("127.0.0.1", self.port), _Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self._sock
        server.server_address = self._sock.getsockname()
        server.fake = self
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-vllm-{self.port}", daemon=True)
        self._thread.start()

    def record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        with self._lock:
            self.requests.append((handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body))

    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [body for method, path, _h, body in self.requests if method == "POST" and path == "/v1/chat/completions"]

    def close(self) -> None:
        self.script.release.set()  # a held stream ends instead of waiting out SAFETY_S
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        else:
            self._sock.close()

    def __enter__(self) -> FakeVllm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
