"""The chat API against the fake vLLM (fake_vllm.py), both real servers on 127.0.0.1.

No sleeps and no timing assertions: the fake holds its stream on threading.Events, and every
wait has a generous upper bound (SAFETY_S) that only matters when something is broken."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from chat_harness import parse_events
from fake_vllm import MODEL, SAFETY_S, FakeVllm, Script, error_response

from apps.chat.logs import JsonFormatter

USER = [{"role": "user", "content": "Why do cold starts matter?"}]


def stream_events(client: httpx.Client, url: str, body: dict) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    with client.stream("POST", url + "/api/chat", json=body) as resp:
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            return resp, list(parse_events(resp.iter_lines()))
        resp.read()
        return resp, []


def test_deltas_stream_in_order_then_the_metrics(fake: FakeVllm, chat_app) -> None:
    # Given vLLM streams five pieces and reports 7 completion tokens in its usage chunk
    fake.script = Script(pieces=["Cold", " starts", " are", " fast", "."], usage_tokens=7)
    url = chat_app(vllm_base_url=fake.url, max_tokens=64)
    # When a conversation is posted with a max_tokens above the cap
    with httpx.Client(timeout=SAFETY_S) as client:
        resp, events = stream_events(client, url, {"messages": USER, "max_tokens": 5000})
    # Then: start, the deltas in order, then done with the metrics
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names == ["start", "delta", "delta", "delta", "delta", "delta", "done"]
    assert events[0][1] == {"model": MODEL}
    assert "".join(data["text"] for name, data in events if name == "delta") == "Cold starts are fast."
    done = events[-1][1]
    assert done["model"] == MODEL
    assert done["completion_tokens"] == 7 and done["completion_tokens_source"] == "usage"
    assert done["finish_reason"] == "stop"
    assert isinstance(done["ttft_ms"], float) and done["ttft_ms"] >= 0
    assert isinstance(done["tokens_per_s"], float) and done["tokens_per_s"] > 0
    assert done["total_ms"] >= done["ttft_ms"]
    # And vLLM was asked for a stream with usage, the discovered model, and max_tokens capped
    (sent,) = fake.chat_requests()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == MODEL
    assert sent["max_completion_tokens"] == 64
    assert sent["messages"] == USER


def test_without_a_usage_chunk_the_deltas_are_counted(fake: FakeVllm, chat_app) -> None:
    fake.script = Script(pieces=["a", "b", "c"], honour_include_usage=False)
    url = chat_app(vllm_base_url=fake.url, served_model_name=MODEL)
    with httpx.Client(timeout=SAFETY_S) as client:
        _resp, events = stream_events(client, url, {"messages": USER})
    done = events[-1]
    assert done[0] == "done"
    assert done[1]["completion_tokens"] == 3 and done[1]["completion_tokens_source"] == "counted"
    # SERVED_MODEL_NAME set: no model discovery before the chat request
    assert [(m, p) for m, p, _h, _b in fake.requests] == [("POST", "/v1/chat/completions")]


def test_503_from_vllm_is_model_starting_not_an_error(fake: FakeVllm, chat_app) -> None:
    fake.mode = "503"
    url = chat_app(vllm_base_url=fake.url, retry_after_s=7)
    with httpx.Client(timeout=SAFETY_S) as client:
        chat = client.post(url + "/api/chat", json={"messages": USER})
        ready = client.get(url + "/readyz")
        info = client.get(url + "/api/info")
        health = client.get(url + "/healthz")
    assert chat.status_code == 503
    assert chat.headers["retry-after"] == "7"
    assert chat.json()["status"] == "starting" and chat.json()["retry_after_s"] == 7
    assert ready.status_code == 503 and ready.json()["status"] == "starting" and ready.headers["retry-after"] == "7"
    assert info.status_code == 200 and info.json()["backend"] == "starting"
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_503_on_the_chat_request_itself_is_model_starting(fake: FakeVllm, chat_app) -> None:
    # vLLM's ScalingMiddleware answers 503 to the POST too (the model name is configured)
    fake.mode = "503"
    url = chat_app(vllm_base_url=fake.url, served_model_name=MODEL)
    with httpx.Client(timeout=SAFETY_S) as client:
        chat = client.post(url + "/api/chat", json={"messages": USER})
    assert chat.status_code == 503 and chat.json()["status"] == "starting"
    assert [p for _m, p, _h, _b in fake.requests] == ["/v1/chat/completions"]


def test_refused_while_vllm_loads_then_answers_once_it_listens(chat_app) -> None:
    # Given vLLM's port is bound but not listening (what vLLM does while the engine loads)
    with FakeVllm.bound_not_listening() as fake:
        url = chat_app(vllm_base_url=fake.url)
        with httpx.Client(timeout=SAFETY_S) as client:
            # Then every entry point says "starting"
            chat = client.post(url + "/api/chat", json={"messages": USER})
            assert chat.status_code == 503 and chat.json()["status"] == "starting"
            assert "retry-after" in chat.headers
            assert client.get(url + "/readyz").json()["status"] == "starting"
            assert client.get(url + "/api/info").json()["backend"] == "starting"
            # When the engine is ready and uvicorn listens
            fake.listen()
            # Then the same app answers
            assert client.get(url + "/readyz").json() == {"status": "ready", "model": MODEL}
            resp, events = stream_events(client, url, {"messages": USER})
    assert resp.status_code == 200 and events[-1][0] == "done"


@pytest.mark.parametrize(("status", "body", "expect_in", "expect_not_in"), [
    (500, error_response("Traceback: CUDA error at /opt/vllm/worker.py:123 secret-internal", 500, "InternalServerError"),
     "the model server failed (HTTP 500)", ["Traceback", "secret-internal", "/opt/vllm"]),
    (400, error_response("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", 400,
                         "BadRequestError"),
     "maximum context length is 4096 tokens", []),
])
def test_upstream_error_status_is_an_error_event(fake: FakeVllm, chat_app, status, body, expect_in, expect_not_in) -> None:
    fake.script = Script(status=status, error_body=body)
    url = chat_app(vllm_base_url=fake.url)
    with httpx.Client(timeout=SAFETY_S) as client:
        resp, events = stream_events(client, url, {"messages": USER})
    assert resp.status_code == 502
    assert [name for name, _ in events] == ["error"]
    error = events[0][1]
    assert error["status"] == "error" and error["upstream_status"] == status
    assert expect_in in error["message"]
    for secret in expect_not_in:
        assert secret not in json.dumps(events)


@pytest.mark.parametrize(("script", "expect"), [
    (Script(raw_after_role=[b"data: {not json\n\n", b"data: [DONE]\n\n"]), "malformed stream"),
    (Script(end_without_done=True), "ended before [DONE]"),
    (Script(stream_error=error_response("Engine core died", 500, "InternalServerError")), "failed while answering (HTTP 500)"),
], ids=["not-json", "no-done", "in-stream-error"])
def test_a_bad_stream_ends_with_an_error_event(fake: FakeVllm, chat_app, script: Script, expect: str) -> None:
    fake.script = script
    url = chat_app(vllm_base_url=fake.url)
    with httpx.Client(timeout=SAFETY_S) as client:
        resp, events = stream_events(client, url, {"messages": USER})
    assert resp.status_code == 200  # the stream had begun
    assert events[0][0] == "start" and events[-1][0] == "error"
    assert "done" not in [name for name, _ in events]
    assert expect in events[-1][1]["message"]
    assert "Engine core died" not in json.dumps(events)


def test_silence_from_vllm_past_the_timeout_is_an_error_event(fake: FakeVllm, chat_app) -> None:
    # vLLM sends one piece, then nothing (held) for longer than the app's read timeout
    fake.script = Script(pieces=["one", " two"], hold_after=1)
    url = chat_app(vllm_base_url=fake.url, upstream_timeout_s=0.5)
    with httpx.Client(timeout=SAFETY_S) as client:
        _resp, events = stream_events(client, url, {"messages": USER})
    fake.script.release.set()
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "error" and "done" not in names
    assert "sent nothing for 0.5 s" in events[-1][1]["message"]


def test_client_disconnect_closes_the_request_to_vllm(fake: FakeVllm, chat_app) -> None:
    # Given vLLM has streamed one piece and then waits, watching its socket
    fake.script = Script(pieces=["one", " two", " three"], hold_after=1, wait_for_disconnect=True)
    url = chat_app(vllm_base_url=fake.url, max_concurrency=1)
    with httpx.Client(timeout=SAFETY_S) as client:
        with client.stream("POST", url + "/api/chat", json={"messages": USER}) as resp:
            seen = []
            for event in parse_events(resp.iter_lines()):
                seen.append(event[0])
                if event[0] == "delta":
                    break
            assert seen == ["start", "delta"]
            assert fake.script.held.is_set()
        # When the client goes away mid-answer (leaving the block closes the unfinished response)
    # Then vLLM sees its connection closed (vLLM aborts the generation on that)
    assert fake.script.saw_disconnect.wait(SAFETY_S), "the chat app kept the request to vLLM open"
    # And the concurrency slot was given back: with a limit of 1, the next answer is served
    fake.script = Script(pieces=["again"])
    with httpx.Client(timeout=SAFETY_S) as client:
        resp, events = stream_events(client, url, {"messages": USER})
    assert resp.status_code == 200 and events[-1][0] == "done"


def test_over_the_concurrency_limit_is_429(fake: FakeVllm, chat_app) -> None:
    fake.script = Script(pieces=["a", "b"], hold_after=1)
    url = chat_app(vllm_base_url=fake.url, max_concurrency=1)
    with httpx.Client(timeout=SAFETY_S) as first, httpx.Client(timeout=SAFETY_S) as second:
        with first.stream("POST", url + "/api/chat", json={"messages": USER}) as resp:
            events = parse_events(resp.iter_lines())
            assert next(events)[0] == "start"
            assert next(events)[0] == "delta"  # the one slot is taken, vLLM is holding
            busy = second.post(url + "/api/chat", json={"messages": USER})
            assert busy.status_code == 429
            assert busy.headers["retry-after"] == "1"
            assert busy.json()["status"] == "busy"
            fake.script.release.set()
            assert [name for name, _ in events] == ["delta", "done"]
    assert len(fake.chat_requests()) == 1


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"messages": [{"role": "user", "content": "x" * 2000}]}, 413, "larger than this service accepts (1024 bytes)"),
    ({"messages": [{"role": "user", "content": "hi"}] * 3}, 422, "has 3 messages; this service accepts at most 2"),
    ({"messages": [{"role": "user", "content": "y" * 301}]}, 422, "has 301 characters; this service accepts at most 300"),
    ({"messages": [{"role": "wizard", "content": "PRIVATE PROMPT"}]}, 422, "messages.0.role"),
    ({"messages": []}, 422, "Invalid request: messages"),
    ({"messages": USER, "max_tokens": 0}, 422, "max_tokens"),
    ({"messages": USER, "temperature": 2}, 422, "temperature"),
], ids=["body-bytes", "messages", "characters", "role", "empty", "max-tokens", "unknown-field"])
def test_limits_and_validation(fake: FakeVllm, chat_app, body: dict, status: int, message: str) -> None:
    url = chat_app(vllm_base_url=fake.url, max_body_bytes=1024, max_messages=2, max_chars=300)
    with httpx.Client(timeout=SAFETY_S) as client:
        resp = client.post(url + "/api/chat", json=body)
    assert resp.status_code == status
    assert message in resp.json()["message"]
    assert "PRIVATE PROMPT" not in resp.text
    assert fake.chat_requests() == []


def test_a_large_body_without_content_length_is_refused_too(fake: FakeVllm, chat_app) -> None:
    url = chat_app(vllm_base_url=fake.url, max_body_bytes=1024)
    payload = json.dumps({"messages": [{"role": "user", "content": "z" * 5000}]}).encode()

    def chunked():
        for i in range(0, len(payload), 512):
            yield payload[i:i + 512]

    with httpx.Client(timeout=SAFETY_S) as client:
        resp = client.post(url + "/api/chat", content=chunked(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


def test_not_json_is_422(fake: FakeVllm, chat_app) -> None:
    url = chat_app(vllm_base_url=fake.url)
    with httpx.Client(timeout=SAFETY_S) as client:
        resp = client.post(url + "/api/chat", content=b"{nope", headers={"content-type": "application/json"})
    assert resp.status_code == 422 and resp.json()["message"] == "The request body is not JSON."


def test_api_key_is_sent_to_vllm_and_no_log_line_has_the_key_or_the_prompt(fake: FakeVllm, chat_app, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="apps.chat")
    url = chat_app(vllm_base_url=fake.url, vllm_api_key="sk-test-KEY-123")
    prompt = [{"role": "user", "content": "PRIVATE PROMPT TEXT"}]
    with httpx.Client(timeout=SAFETY_S) as client:
        resp, events = stream_events(client, url, {"messages": prompt})
        info = client.get(url + "/api/info")
        page = client.get(url + "/")
    assert events[-1][0] == "done"
    assert all(headers.get("authorization") == "Bearer sk-test-KEY-123" for _m, _p, headers, _b in fake.requests)
    lines = [JsonFormatter().format(record) for record in caplog.records if record.name == "apps.chat"]
    finished = [json.loads(line) for line in lines if json.loads(line)["message"] == "chat finished"]
    assert len(finished) == 1
    assert finished[0]["outcome"] == "ok" and finished[0]["prompt_chars"] == len("PRIVATE PROMPT TEXT")
    assert finished[0]["completion_tokens"] == len(Script().pieces)
    text = "\n".join(lines)
    assert "sk-test-KEY-123" not in text and "PRIVATE PROMPT TEXT" not in text
    assert "sk-test-KEY-123" not in info.text + page.text


def test_page_and_security_headers(fake: FakeVllm, chat_app) -> None:
    url = chat_app(vllm_base_url=fake.url)
    with httpx.Client(timeout=SAFETY_S) as client:
        page = client.get(url + "/")
        script = client.get(url + "/static/app.js")
        info = client.get(url + "/api/info")
    assert page.status_code == 200 and "<title>vLLM cold-start chat</title>" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert info.json() == {"model": MODEL, "backend": "ready", "message": None, "retry_after_s": 5,
                           "limits": {"max_messages": 32, "max_chars": 16000, "max_tokens": 512}}


def test_readyz_reports_a_served_model_name_vllm_does_not_serve(fake: FakeVllm, chat_app) -> None:
    url = chat_app(vllm_base_url=fake.url, served_model_name="llama-typo")
    with httpx.Client(timeout=SAFETY_S) as client:
        ready = client.get(url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "error"
    assert f"serves {MODEL}" in ready.json()["message"]


def test_a_model_vllm_no_longer_serves_is_discovered_again(fake: FakeVllm, chat_app) -> None:
    url = chat_app(vllm_base_url=fake.url)
    with httpx.Client(timeout=SAFETY_S) as client:
        assert stream_events(client, url, {"messages": USER})[1][-1][0] == "done"
        # vLLM restarted with another model: the cached name is refused once, then rediscovered
        fake.model = "qwen-awq"
        resp, events = stream_events(client, url, {"messages": USER})
        assert resp.status_code == 502 and events[-1][1]["upstream_status"] == 404
        assert "The model `mistral-7b-awq` does not exist" in events[-1][1]["message"]
        resp, events = stream_events(client, url, {"messages": USER})
    assert events[-1][0] == "done" and events[-1][1]["model"] == "qwen-awq"
