// The chat page: sends the conversation to POST /api/chat and renders its Server-Sent Events
// (start, delta, done, error). While the API says the model is starting (HTTP 503
// {status: "starting"}), it shows "Model starting…", polls /api/info and sends the message
// once the model is ready. No build step, no dependencies, no inline script (the CSP forbids it).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("chat-form");
  const prompt = $("prompt");
  const sendButton = $("send");
  const stopButton = $("stop");
  const newChatButton = $("new-chat");
  const statusEl = $("backend-status");
  const modelEl = $("model-name");
  const transcript = $("transcript");
  const answer = $("answer");
  const errorEl = $("error");
  const metrics = { ttft: $("metric-ttft"), tps: $("metric-tps"), total: $("metric-total"), tokens: $("metric-tokens") };

  let history = [];          // the conversation sent to the API: {role, content}
  let lastAnswer = null;      // the answer shown in #answer, moved to the transcript on the next turn
  let pending = null;         // the messages waiting to be sent while the model starts
  let controller = null;      // aborts the running request (Stop)
  let pollTimer = null;
  let retrySeconds = 5;
  const STARTING_PENDING = "Model starting… your message is sent as soon as it is ready.";

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
  }

  function clearError() {
    errorEl.textContent = "";
    errorEl.hidden = true;
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    stopButton.disabled = !busy;
    answer.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function addTurn(role, content) {
    const item = document.createElement("li");
    item.className = role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : "Model";
    const text = document.createElement("p");
    text.textContent = content;
    item.append(who, text);
    transcript.append(item);
  }

  function formatMs(ms) {
    if (ms === null || ms === undefined) return "–";
    return ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
  }

  function showMetrics(done) {
    metrics.ttft.textContent = formatMs(done.ttft_ms);
    metrics.tps.textContent = done.tokens_per_s === null || done.tokens_per_s === undefined ? "–" : done.tokens_per_s.toFixed(1);
    metrics.total.textContent = formatMs(done.total_ms);
    metrics.tokens.textContent = `${done.completion_tokens}${done.completion_tokens_source === "counted" ? " (counted)" : ""}`;
  }

  function resetMetrics() {
    for (const el of Object.values(metrics)) el.textContent = "–";
  }

  function showBackend(info) {
    if (info.model) modelEl.textContent = info.model;
    if (info.retry_after_s) retrySeconds = info.retry_after_s;
    if (info.limits && info.limits.max_chars) prompt.maxLength = info.limits.max_chars;
    if (info.backend === "ready") setStatus("ready", "Ready");
    else if (info.backend === "starting") setStatus("starting", pending ? STARTING_PENDING : "Model starting… this page retries by itself.");
    else setStatus("error", `Model server unavailable: ${info.message || "unknown error"}`);
  }

  async function refreshInfo() {
    try {
      const resp = await fetch("/api/info", { headers: { accept: "application/json" } });
      const info = await resp.json();
      showBackend(info);
      return info.backend;
    } catch (err) {
      setStatus("error", "Cannot reach the chat service.");
      return "unreachable";
    }
  }

  // While starting: ask /api/info every Retry-After seconds; once ready, send what is pending.
  function pollUntilReady() {
    if (pollTimer !== null) return;
    pollTimer = window.setTimeout(async () => {
      pollTimer = null;
      const state = await refreshInfo();
      if (state === "ready") {
        if (pending) {
          const messages = pending;
          pending = null;
          send(messages);
        }
      } else {
        pollUntilReady();
      }
    }, retrySeconds * 1000);
  }

  function parseEvents(buffer, onEvent) {
    // Complete events end with a blank line; returns what is left over.
    let index;
    while ((index = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, index);
      buffer = buffer.slice(index + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
    return buffer;
  }

  function giveBack(messages, message) {
    // Not answered: take the user's message out of the conversation and back into the box.
    history = messages.slice(0, -1);
    const last = transcript.lastElementChild;
    if (last && last.classList.contains("user")) last.remove();
    prompt.value = messages[messages.length - 1].content;
    if (message) showError(message);
  }

  async function send(messages) {
    clearError();
    setBusy(true);
    answer.textContent = "";
    resetMetrics();
    setStatus("busy", "Generating…");
    controller = new AbortController();
    let text = "";
    let finished = false;
    try {
      const resp = await fetch("/api/chat", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify({ messages }),
        signal: controller.signal,
      });
      const type = resp.headers.get("content-type") || "";
      if (!type.startsWith("text/event-stream")) {
        const body = await resp.json().catch(() => ({}));
        if (resp.status === 503 && body.status === "starting") {
          if (body.retry_after_s) retrySeconds = body.retry_after_s;
          setStatus("starting", STARTING_PENDING);
          pending = messages;
          pollUntilReady();
          return;
        }
        if (resp.status === 429) {
          setStatus("busy", "Busy: retrying in a moment…");
          pending = messages;
          pollUntilReady();
          return;
        }
        giveBack(messages, body.message || `The chat service answered HTTP ${resp.status}.`);
        setStatus("ready", "Ready");
        return;
      }
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = parseEvents(buffer + value.replace(/\r\n/g, "\n"), (name, data) => {
          if (name === "start" && data.model) modelEl.textContent = data.model;
          else if (name === "delta") {
            text += data.text;
            answer.textContent = text;
          } else if (name === "done") {
            finished = true;
            if (data.model) modelEl.textContent = data.model;
            showMetrics(data);
            history = messages.concat([{ role: "assistant", content: text }]);
            lastAnswer = text;
            setStatus("ready", "Ready");
          } else if (name === "error") {
            finished = true;
            giveBack(messages, `The model could not answer: ${data.message}`);
            setStatus("ready", "Ready");
          }
        });
      }
      if (!finished) {
        giveBack(messages, "The answer stopped before it was complete.");
        setStatus("ready", "Ready");
      }
    } catch (err) {
      if (err.name === "AbortError") {
        history = messages.concat(text ? [{ role: "assistant", content: text }] : []);
        lastAnswer = text || null;
        setStatus("ready", "Stopped.");
      } else {
        giveBack(messages, "Cannot reach the chat service.");
        setStatus("error", "Cannot reach the chat service.");
      }
    } finally {
      controller = null;
      if (!pending) setBusy(false);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = prompt.value.trim();
    if (!content) {
      showError("Type a message first.");
      prompt.focus();
      return;
    }
    if (pending || controller) return;
    if (lastAnswer !== null) {
      addTurn("assistant", lastAnswer);
      lastAnswer = null;
      answer.textContent = "";
    }
    addTurn("user", content);
    prompt.value = "";
    history = history.concat([{ role: "user", content }]);
    send(history);
  });

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", () => {
    if (controller) {
      controller.abort();
    } else if (pending) {
      // Waiting for the model to start: give the message back instead of sending it later.
      const messages = pending;
      pending = null;
      giveBack(messages, null);
      setBusy(false);
    }
  });

  newChatButton.addEventListener("click", () => {
    if (controller) controller.abort();
    history = [];
    lastAnswer = null;
    pending = null;
    transcript.replaceChildren();
    answer.textContent = "";
    resetMetrics();
    clearError();
    setBusy(false);
    prompt.focus();
  });

  refreshInfo().then((state) => {
    if (state === "starting") pollUntilReady();
  });
})();
