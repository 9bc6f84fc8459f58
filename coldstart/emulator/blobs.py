"""The emulated ECR blob store: what the seeding pushes and the resolve step's layer fetch reads back."""

from __future__ import annotations

import hashlib
from typing import Any

from coldstart.emulator.common import EmulatorError

# Blobs pushed by seed_ecr_image_with_config, content-addressed (so one table serves every world).
BLOBS: dict[str, bytes] = {}
LAYER_URL = "https://emulated-ecr-layer.invalid/"


def fetch_layer(url: str) -> bytes:
    """The resolve step's layer fetch while emulated: the blobs ``ecr_get_download_url_for_layer`` points at."""
    if not url.startswith(LAYER_URL) or url[len(LAYER_URL):] not in BLOBS:
        raise EmulatorError(f"no emulated blob behind {url}")
    return BLOBS[url[len(LAYER_URL):]]


def push_blob(ecr: Any, repository: str, data: bytes) -> str:
    upload = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    ecr.upload_layer_part(repositoryName=repository, uploadId=upload, partFirstByte=0, partLastByte=len(data) - 1, layerPartBlob=data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    ecr.complete_layer_upload(repositoryName=repository, uploadId=upload, layerDigests=[digest])
    BLOBS[digest] = data
    return digest
