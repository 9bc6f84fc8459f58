"""Checks that a model folder will load with vLLM's Run:ai streamer, before anything is uploaded.

The streamer lists the S3 prefix non-recursively: every ``*.safetensors`` must sit directly under
it, next to ``config.json`` and the tokenizer. A truncated or corrupt safetensors file is caught
here by parsing its header (8-byte little-endian length, then that many bytes of JSON) and
checking that the tensors' data offsets end exactly at the end of the file.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldstart.ops.errors import OperatorError

SAFETENSORS_SUFFIX = ".safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
CONFIG_FILE = "config.json"
# Any one of these lets transformers' AutoTokenizer build a tokenizer for the usual model families.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model")
# The safetensors library refuses headers above 100 MB; so do we, before reading them.
MAX_HEADER_BYTES = 100_000_000


class LayoutError(OperatorError):
    """The model would not load; the message lists every reason."""


@dataclass(frozen=True)
class ModelFile:
    name: str  # file name directly under the model folder (= key suffix under the prefix)
    path: Path
    size: int


def parse_safetensors_header(head: bytes, file_size: int, label: str) -> dict[str, Any]:
    """Parse and check a safetensors header from the file's first bytes. Raises ValueError."""
    if len(head) < 8:
        raise ValueError(f"{label}: {file_size} bytes is too short for a safetensors header")
    (length,) = struct.unpack("<Q", head[:8])
    if length == 0 or length > MAX_HEADER_BYTES:
        raise ValueError(f"{label}: header length {length} is not plausible (corrupt or not safetensors)")
    if 8 + length > file_size:
        raise ValueError(f"{label}: header says {length} bytes but the file has only {file_size} (truncated)")
    if len(head) < 8 + length:
        raise ValueError(f"{label}: need {8 + length} bytes to read the header, got {len(head)}")
    try:
        header = json.loads(head[8 : 8 + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{label}: header is not valid JSON (corrupt or truncated)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{label}: header is not a JSON object")
    data_end = 0
    for tensor, spec in header.items():
        if tensor == "__metadata__":
            continue
        offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise ValueError(f"{label}: tensor {tensor!r} has no valid data_offsets")
        data_end = max(data_end, offsets[1])
    expected = 8 + length + data_end
    if expected > file_size:
        raise ValueError(f"{label}: tensors need {expected} bytes but the file has {file_size} (truncated)")
    if expected < file_size:
        raise ValueError(f"{label}: {file_size - expected} unexpected bytes after the tensor data (corrupt)")
    return header


def read_safetensors_header(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) == 8:
            (length,) = struct.unpack("<Q", prefix)
            if 0 < length <= MAX_HEADER_BYTES:
                prefix += fh.read(length)
    return parse_safetensors_header(prefix, size, path.name)


def _visible(path: Path, root: Path) -> bool:
    """Skip dot-files and dot-folders (.git, .cache/huggingface from snapshot_download)."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def check_model_folder(root: Path) -> list[ModelFile]:
    """The files to upload (regular files directly under ``root``), or LayoutError with every problem."""
    if not root.is_dir():
        raise LayoutError(f"model folder {root} does not exist or is not a folder; pass --from-dir <folder>")
    problems: list[str] = []
    files = sorted((p for p in root.iterdir() if p.is_file() and _visible(p, root)), key=lambda p: p.name)
    names = {p.name for p in files}

    nested = sorted(
        str(p.relative_to(root)) for p in root.rglob(f"*{SAFETENSORS_SUFFIX}") if p.parent != root and _visible(p, root)
    )
    if nested:
        problems.append(
            f"safetensors in subfolders ({', '.join(nested[:5])}{' ...' if len(nested) > 5 else ''}): "
            "the streamer reads only files directly under the prefix; move them up or drop them"
        )
    weights = [p for p in files if p.name.endswith(SAFETENSORS_SUFFIX)]
    if not weights:
        problems.append(f"no *{SAFETENSORS_SUFFIX} directly in {root}: the streamer loads only safetensors weights")
    if CONFIG_FILE not in names:
        problems.append(f"missing {CONFIG_FILE} beside the weights")
    else:
        try:
            if not isinstance(json.loads((root / CONFIG_FILE).read_text()), dict):
                problems.append(f"{CONFIG_FILE} is not a JSON object")
        except (ValueError, UnicodeDecodeError):
            problems.append(f"{CONFIG_FILE} is not valid JSON")
    if not names.intersection(TOKENIZER_FILES):
        problems.append(f"no tokenizer beside the weights (expected one of {', '.join(TOKENIZER_FILES)})")
    for weight in weights:
        try:
            read_safetensors_header(weight)
        except ValueError as exc:
            problems.append(str(exc))
    if SAFETENSORS_INDEX in names:
        problems.extend(_check_index(root / SAFETENSORS_INDEX, names))

    if problems:
        raise LayoutError(f"refusing {root}: vLLM's streamer could not load it: " + "; ".join(problems))
    return [ModelFile(p.name, p, p.stat().st_size) for p in files]


def _check_index(index: Path, names: set[str]) -> list[str]:
    try:
        weight_map = json.loads(index.read_text()).get("weight_map", {})
    except (ValueError, AttributeError):
        return [f"{index.name} is not valid JSON with a weight_map"]
    missing = sorted(set(weight_map.values()) - names)
    return [f"{index.name} lists shards that are not beside it: {', '.join(missing)}"] if missing else []
