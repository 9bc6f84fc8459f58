"""The chat page in a real browser: Debian's Chromium (/usr/bin/chromium, headless) driven by
Playwright for Python over CDP, against the real chat app (uvicorn) in front of the fake vLLM.

Nothing here is skipped: without Chromium the tests fail and say how to install it
(tools/install-browser-deps.sh). Playwright's own browser download is never used. Waits are
Playwright's auto-waiting `expect`; the fake holds its stream on events. Screenshots go to
test-artifacts/chat-browser/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_vllm import MODEL, SAFETY_S, FakeVllm, Script

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "chat-browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = SAFETY_S * 1000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
                    f"Run `tools/install-browser-deps.sh` as root (it apt-installs chromium), then rerun.", pytrace=False)
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is not installed in .venv: run `make setup` (requirements-dev.txt).", pytrace=False)
    expect.set_options(timeout=WAIT_MS)  # an upper bound on busy machines; expect returns as soon as it holds
    with sync_playwright() as playwright:
        # a generous launch bound: the CI machine's 2 cores are shared
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=120_000)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page with its console messages and uncaught errors recorded."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 1000, "height": 760})
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line or "Refused to" in line]

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    page = Watched(browser)
    try:
        yield page
    finally:
        page.context.close()


def test_a_typed_prompt_streams_an_answer_with_ttft_and_tokens_per_second(watched: Watched, fake: FakeVllm, chat_app) -> None:
    from playwright.sync_api import expect

    # Given vLLM streams two pieces, then holds the rest until released
    fake.script = Script(pieces=["Cold", " starts", " are", " fast", "."], usage_tokens=5, hold_after=2)
    url = chat_app(vllm_base_url=fake.url)
    page = watched.page
    page.goto(url)
    expect(page.locator("#backend-status")).to_have_text("Ready")
    expect(page.locator("#model-name")).to_have_text(MODEL)

    # When a prompt is typed into the labelled box and sent with the keyboard
    box = page.get_by_label("Your message")
    box.click()
    page.keyboard.type("Why are cold starts fast?")
    page.keyboard.press("Enter")

    # Then the first pieces show while the rest is still coming (streamed, not all at once)
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("aria-live", "polite")
    expect(answer).to_have_text("Cold starts")
    expect(answer).to_have_attribute("aria-busy", "true")
    fake.script.release.set()
    expect(answer).to_have_text("Cold starts are fast.")
    expect(answer).to_have_attribute("aria-busy", "false")
    # And the metrics and the served model name are shown
    expect(page.locator("#metric-ttft")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    expect(page.locator("#metric-tps")).to_have_text(re.compile(r"^\d+\.\d$"))
    expect(page.locator("#metric-tokens")).to_have_text("5")
    expect(page.locator("#metric-total")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    expect(page.locator("#model-name")).to_have_text(MODEL)
    expect(page.locator("#transcript li.user")).to_contain_text("Why are cold starts fast?")
    expect(page.locator("#error")).to_be_hidden()
    expect(box).to_have_value("")
    assert fake.chat_requests()[0]["messages"] == [{"role": "user", "content": "Why are cold starts fast?"}]

    # And keyboard focus is visible: Tab from the message box lands on Send, outlined
    box.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"

    watched.screenshot("streamed-answer")
    assert watched.errors == []
    assert [line for line in watched.console if line.startswith("error")] == []


def test_model_starting_is_shown_then_the_page_recovers_by_itself(watched: Watched, fake: FakeVllm, chat_app) -> None:
    from playwright.sync_api import expect

    # Given vLLM answers 503 (starting) and the app tells the page to retry every second
    fake.mode = "503"
    fake.script = Script(pieces=["Hello", ",", " cold", " start", "!"])
    url = chat_app(vllm_base_url=fake.url, retry_after_s=1)
    page = watched.page
    page.goto(url)
    status = page.locator("#backend-status")
    expect(status).to_have_text("Model starting… this page retries by itself.")

    # When a message is sent while the model starts
    page.get_by_label("Your message").fill("Are you there?")
    page.get_by_label("Your message").press("Enter")

    # Then the page says "Model starting" and shows no error
    expect(status).to_have_text("Model starting… your message is sent as soon as it is ready.")
    expect(status).to_have_attribute("data-state", "starting")
    expect(page.locator("#error")).to_be_hidden()
    watched.screenshot("model-starting")
    assert fake.chat_requests() == []

    # When vLLM becomes ready, the page sends the message by itself and shows the answer
    fake.mode = "ready"
    expect(page.locator("#answer")).to_have_text("Hello, cold start!")
    expect(status).to_have_text("Ready")
    expect(page.locator("#model-name")).to_have_text(MODEL)
    expect(page.locator("#metric-ttft")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    expect(page.locator("#error")).to_be_hidden()
    assert [r["messages"] for r in fake.chat_requests()] == [[{"role": "user", "content": "Are you there?"}]]
    watched.screenshot("model-recovered")
    assert watched.errors == []
    assert watched.csp_violations() == []
