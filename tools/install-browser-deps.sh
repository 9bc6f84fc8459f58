#!/usr/bin/env bash
# System packages for the chat app's browser test (tests/apps/test_chat_browser.py): Debian's
# headless-capable Chromium at /usr/bin/chromium, driven by Playwright for Python over CDP.
# Playwright's own browser download (`playwright install`) is never used: it fetches a browser
# build from outside the package registries, which this project's machines cannot reach.
# Needs root (apt); idempotent: does nothing but print versions when chromium is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  echo "==> apt-get install chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation > /dev/null
fi
[ -x "$CHROMIUM" ] || { echo "install-browser-deps: $CHROMIUM still missing after apt-get install chromium" >&2; exit 1; }
"$CHROMIUM" --version
if [ -x .venv/bin/python ]; then
  .venv/bin/python -c 'from importlib.metadata import version; print("playwright (python)", version("playwright"))' 2>/dev/null \
    || echo "playwright (python): not installed in .venv (make setup installs requirements-dev.txt)"
fi
