"""coldstart/ops/smoke.py against the fake vLLM (fake_vllm.py), directly and through the chat app."""

from __future__ import annotations

import re

import pytest
from fake_vllm import MODEL, SAFETY_S, FakeVllm, Script, error_response

from coldstart.ops.errors import OperatorError
from coldstart.ops.smoke import CHAT_APP_PATH, ModelStarting, SmokeFailed, SmokeResult, format_result, run_smoke


def test_against_vllm_directly(fake: FakeVllm) -> None:
    fake.script = Script(pieces=["Hi", " there", "!"], usage_tokens=4)
    result = run_smoke(fake.url, prompt="hello?", max_tokens=16, timeout=SAFETY_S)
    assert result.model == MODEL and result.text == "Hi there!"
    assert result.completion_tokens == 4 and result.completion_tokens_source == "usage"
    assert result.ttft_ms >= 0 and result.total_ms >= result.ttft_ms
    assert result.tokens_per_s is not None and result.tokens_per_s > 0
    assert result.url == fake.url + "/v1/chat/completions"
    (sent,) = fake.chat_requests()
    assert sent["model"] == MODEL and sent["max_completion_tokens"] == 16 and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "hello?"}]
    # the model came from GET /v1/models
    assert [p for _m, p, _h, _b in fake.requests] == ["/v1/models", "/v1/chat/completions"]


def test_a_given_model_skips_discovery_and_the_key_is_sent(fake: FakeVllm) -> None:
    run_smoke(fake.url, model=MODEL, timeout=SAFETY_S, api_key="sk-smoke")
    assert [p for _m, p, _h, _b in fake.requests] == ["/v1/chat/completions"]
    assert fake.requests[0][2]["authorization"] == "Bearer sk-smoke"


def test_through_the_chat_app(fake: FakeVllm, chat_app) -> None:
    fake.script = Script(pieces=["via", " the", " app"], usage_tokens=5)
    url = chat_app(vllm_base_url=fake.url)
    result = run_smoke(url, timeout=SAFETY_S, api_path=CHAT_APP_PATH, max_tokens=8)
    assert result.text == "via the app" and result.model == MODEL
    assert result.completion_tokens == 5 and result.completion_tokens_source == "usage"
    assert fake.chat_requests()[0]["max_completion_tokens"] == 8


def test_format_result_is_one_line() -> None:
    line = format_result(SmokeResult(url="http://x/v1/chat/completions", model="m", text="hi", ttft_ms=123.4,
                                     tokens_per_s=45.67, total_ms=890.1, completion_tokens=32, completion_tokens_source="usage"))
    assert line == "model m | TTFT 123 ms | 45.7 tokens/s | total 890 ms | 32 tokens (usage)"
    assert "\n" not in line


def test_503_is_model_starting(fake: FakeVllm) -> None:
    fake.mode = "503"
    with pytest.raises(ModelStarting, match=re.escape(f"{fake.url}/v1/models answered 503: the model is still starting")):
        run_smoke(fake.url, timeout=SAFETY_S)
    with pytest.raises(ModelStarting, match=re.escape(f"{fake.url}/v1/chat/completions answered 503")):
        run_smoke(fake.url, model=MODEL, timeout=SAFETY_S)


def test_chat_app_starting_is_model_starting(fake: FakeVllm, chat_app) -> None:
    fake.mode = "503"
    url = chat_app(vllm_base_url=fake.url, retry_after_s=9)
    with pytest.raises(ModelStarting, match="try again in 9 s"):
        run_smoke(url, timeout=SAFETY_S, api_path=CHAT_APP_PATH)


def test_500_is_smoke_failed_with_the_url_and_what_to_do(fake: FakeVllm) -> None:
    fake.script = Script(status=500, error_body=error_response("EngineCore crashed", 500, "InternalServerError"))
    with pytest.raises(SmokeFailed) as caught:
        run_smoke(fake.url, model=MODEL, timeout=SAFETY_S)
    assert not isinstance(caught.value, ModelStarting)
    assert isinstance(caught.value, OperatorError)  # the CLI prints it as one line
    message = str(caught.value)
    assert message.startswith(f"{fake.url}/v1/chat/completions answered HTTP 500")
    assert "see the vLLM pod logs" in message and "\n" not in message


def test_an_error_through_the_chat_app_is_smoke_failed(fake: FakeVllm, chat_app) -> None:
    fake.script = Script(status=500)
    url = chat_app(vllm_base_url=fake.url)
    with pytest.raises(SmokeFailed, match=r"answered HTTP 502 \(the model server failed \(HTTP 500\); see its logs\)"):
        run_smoke(url, timeout=SAFETY_S, api_path=CHAT_APP_PATH)


def test_malformed_or_cut_streams_are_smoke_failed(fake: FakeVllm) -> None:
    fake.script = Script(raw_after_role=[b"data: {nope\n\n"])
    with pytest.raises(SmokeFailed, match="malformed stream"):
        run_smoke(fake.url, model=MODEL, timeout=SAFETY_S)
    fake.script = Script(end_without_done=True)
    with pytest.raises(SmokeFailed, match=r"ended before \[DONE\]"):
        run_smoke(fake.url, model=MODEL, timeout=SAFETY_S)


def test_unreachable_is_smoke_failed_naming_the_url() -> None:
    # a port that is bound but not listening refuses, like vLLM's while the model loads
    with FakeVllm.bound_not_listening() as fake:
        with pytest.raises(SmokeFailed) as caught:
            run_smoke(fake.url, model=MODEL, timeout=SAFETY_S)
    assert not isinstance(caught.value, ModelStarting)
    assert str(caught.value).startswith(f"{fake.url}/v1/chat/completions: connection refused")


def test_a_bad_url_is_smoke_failed() -> None:
    with pytest.raises(SmokeFailed, match="not an http:// or https:// URL"):
        run_smoke("localhost:8000", timeout=1)
