"""``coldstart build-push-images``: build the demo chat image (apps/chat) and push it to its ECR repository.

The tag is ``git-<12-hex SHA>`` of the checkout (k8s_charts.chat.checkout_image_tag), the same tag
``update-manifests`` deploys, so a manifest names exactly one image: the repository's tags are
immutable. A tag already pushed is not rebuilt. The ECR password goes to ``<cli> login
--password-stdin`` on stdin: never in argv, the environment or the shell history.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from coldstart.ops.errors import OperatorError
from k8s_charts.chat_image import APP_DIR, REPO_ROOT, checkout_image_tag

# Container CLIs that speak docker's build/login/push interface, in order of preference.
CONTAINER_CLIS = ("docker", "finch")
ENV_CONTAINER_CLI = "CONTAINER_CLI"


@dataclass(frozen=True)
class PushPlan:
    cli: str
    repository_uri: str
    tag: str
    platform: str
    context: Path

    @property
    def image(self) -> str:
        return f"{self.repository_uri}:{self.tag}"

    @property
    def registry(self) -> str:
        return self.repository_uri.split("/", 1)[0]


def find_container_cli(environ: dict[str, str] | None = None) -> str:
    """$CONTAINER_CLI, else docker, else finch; an OperatorError naming what to install otherwise."""
    env = os.environ if environ is None else environ
    chosen = env.get(ENV_CONTAINER_CLI)
    if chosen:
        path = shutil.which(chosen, path=env.get("PATH"))
        if path is None:
            raise OperatorError(f"{ENV_CONTAINER_CLI}={chosen!r} is not an executable on PATH; unset it or point it at docker or finch")
        return path
    for name in CONTAINER_CLIS:
        path = shutil.which(name, path=env.get("PATH"))
        if path is not None:
            return path
    raise OperatorError("neither docker nor finch is on PATH; install Docker (docs.docker.com/engine/install) or "
                        f"Finch (github.com/runfinch/finch), or set {ENV_CONTAINER_CLI}=/path/to/a/docker-compatible/cli")


def platform_for(instance_type: str) -> str:
    """The chat pod runs on the system nodes (the GPU nodes' taint keeps it off them): build for their arch.
    Graviton types have a "g" right after the generation digit (m7g, c6gn, t4g, r8gd)."""
    family = instance_type.split(".", 1)[0]
    generation_suffix = family.lstrip("abcdefghijklmnopqrstuvwxyz").lstrip("0123456789")
    return "linux/arm64" if generation_suffix.startswith("g") else "linux/amd64"


def clean_tag(repo_root: Path | None = None) -> str:
    """The checkout's tag; refuses when apps/chat differs from the commit, since the tag would lie."""
    repo_root = repo_root or REPO_ROOT
    tag = checkout_image_tag(repo_root)
    if tag is None:
        raise OperatorError(f"{repo_root} is not a git checkout; the image tag is the commit (git-<sha>)")
    dirty = subprocess.run(["git", "-C", str(repo_root), "status", "--porcelain", "--", APP_DIR],
                           capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    if dirty:
        raise OperatorError(f"{APP_DIR} has uncommitted changes; commit them first (the tag {tag} names a commit and "
                            "the repository's tags are immutable)")
    return tag


def app_context() -> Path:
    """The image's build context: apps/chat of this checkout."""
    return REPO_ROOT / APP_DIR


def already_pushed(ecr: Any, repository_name: str, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository_name, imageIds=[{"imageTag": tag}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            return False
        raise
    return True


def _run(argv: list[str], *, step: str, stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, text=True, check=False)
    if done.returncode != 0:
        raise OperatorError(f"{step} failed: `{' '.join(argv)}` exited {done.returncode}; see its output above")


def login(plan: PushPlan, ecr: Any) -> None:
    """`<cli> login` with the ECR token on stdin (the token is a base64 ``AWS:<password>``)."""
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    _run([plan.cli, "login", "--username", user, "--password-stdin", plan.registry], step="registry login", stdin=password)


def build_and_push(plan: PushPlan, ecr: Any, *, say: Callable[[str], None]) -> str:
    """Build, log in, push; returns the pushed reference. Each step says what it is doing first."""
    say(f"building {plan.image} for {plan.platform} from {plan.context}")
    _run([plan.cli, "build", "--platform", plan.platform, "--tag", plan.image, str(plan.context)], step="build")
    say(f"logging in to {plan.registry}")
    login(plan, ecr)
    say(f"pushing {plan.image}")
    _run([plan.cli, "push", plan.image], step="push")
    return plan.image
