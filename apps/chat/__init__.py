"""The demo chat app: a small API in front of vLLM's OpenAI-compatible server, and one static page.

`python -m apps.chat` reads its settings from the environment (apps/chat/config.py), then serves
`POST /api/chat` (Server-Sent Events), `/api/info`, `/healthz`, `/readyz` and the page.
"""
