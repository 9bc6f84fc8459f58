"""A small two-platform OCI image built by the test itself (no registry download): an OCI image layout
(image-spec ``image-layout.md``) with one index, one manifest per platform, one gzip layer each.

skopeo copies it to the local distribution registry; containerd pulls it back from there.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Built:
    layout: Path
    index_digest: str
    manifests: dict[str, str]  # arch -> manifest digest
    layers: dict[str, str]  # arch -> layer digest
    diff_ids: dict[str, str]  # arch -> uncompressed layer digest (= the chain ID of its one-layer snapshot)


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


def _layer(arch: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, text in {"etc/coldstart-arch": f"{arch}\n", "opt/app/README": "vllm-coldstart test image\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def build(layout: Path, platforms: tuple[str, ...] = ("amd64", "arm64")) -> Built:
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entries, manifests, layers, diff_ids = [], {}, {}, {}
    for arch in platforms:
        layer = _layer(arch)
        layer_digest, layer_size = _blob(layout, layer)
        diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
        config = {"architecture": arch, "os": "linux", "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/true"]},
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        config_digest, config_size = _blob(layout, json.dumps(config).encode())
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
                    "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer_size}]}
        manifest_digest, manifest_size = _blob(layout, json.dumps(manifest).encode())
        manifests[arch], layers[arch], diff_ids[arch] = manifest_digest, layer_digest, diff_id
        entries.append({"mediaType": MANIFEST, "digest": manifest_digest, "size": manifest_size,
                        "platform": {"architecture": arch, "os": "linux"}})
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}
    index_digest, index_size = _blob(layout, json.dumps(index).encode())
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": INDEX, "digest": index_digest, "size": index_size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    return Built(layout, index_digest, manifests, layers, diff_ids)
