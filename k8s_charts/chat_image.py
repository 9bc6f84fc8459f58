"""Which tag names the demo chat image: ``git-<12-hex commit>`` of the checkout.

``coldstart build-push-images`` pushes that tag and the chat chart deploys it, so both sides agree
without a lookup. No cdk8s import here: the CLI reads it without starting the jsii runtime.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from settings import names

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = "apps/chat"  # the image's build context


def checkout_image_tag(repo_root: Path | None = None) -> str | None:
    """``git-<12-hex short SHA>`` of the checkout (the tag ``coldstart build-push-images`` pushes), None outside git."""
    try:
        out = subprocess.run(["git", "-C", str(repo_root or REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=30, check=False)
    except OSError:
        return None
    sha = out.stdout.strip()
    return f"{names.CHAT_IMAGE_TAG_PREFIX}{sha}" if out.returncode == 0 and sha else None
