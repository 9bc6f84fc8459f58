"""Runs the real chat app under real uvicorn in a thread, on 127.0.0.1 with an ephemeral port, and
reads its Server-Sent Events. The listening socket is opened before uvicorn starts, so a client
may connect at once (the kernel queues it until uvicorn accepts): no waiting for readiness."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from apps.chat.app import create_app
from apps.chat.config import Settings


@contextmanager
def serve_chat(settings: Settings) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5, server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"chat-app-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "the chat app's uvicorn did not stop within 30 s"


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs from an event stream's lines."""
    name, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield name, json.loads("\n".join(data))
