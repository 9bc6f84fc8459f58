"""The build plan: what ResolveInput decided, the only description of the build the later steps use.

The state machine carries it as ``$.plan`` (JSON) and reads a few fields itself with JSONPath
(``$.plan.debounceSeconds``, ``pollIntervalSeconds``, ``maxPolls``, ``commandMaxPolls``,
``gateMaxPolls``), so ``to_state`` keeps the camelCase keys stacks/pipeline/state_machine.py names.
Handlers turn ``event["plan"]`` back into a ``BuildPlan`` with ``from_state``; a plan that is not
what ResolveInput wrote raises InputValidationError naming the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from .core.cuda_gate import Verdict
from .core.errors import InputValidationError


@dataclass(frozen=True)
class PlannedImage:
    """One image to pull: as the user named it, its digest, the digest-pinned reference and its kind
    (``images.KIND_*``)."""

    reference: str
    digest: str
    pinned: str
    kind: str

    def to_state(self) -> dict[str, str]:
        return {"reference": self.reference, "digest": self.digest, "pinned": self.pinned, "kind": self.kind}

    @classmethod
    def from_state(cls, data: Any, field: str) -> PlannedImage:
        if not isinstance(data, dict):
            raise _malformed(field, data, "an object with reference, digest, pinned and kind")
        return cls(**{f.name: _typed(data, f.name, str, field) for f in fields(cls)})


@dataclass(frozen=True)
class BuildPlan:
    images: tuple[PlannedImage, ...]
    platforms: tuple[str, ...]
    kubernetes_version: str
    ami_id: str  # the Bottlerocket AMI the builder boots
    bottlerocket_version: str  # 1.x.y, the version the GPU nodes pin
    force: bool  # build even if the same build is already published
    trigger: str  # names.TRIGGER_*
    debounce_seconds: int
    poll_interval_seconds: int
    max_polls: int
    command_max_polls: int
    gate_max_polls: int
    cuda: tuple[Verdict, ...]  # the CUDA gate's verdict per vLLM image and platform

    @property
    def build_key(self) -> str:
        return build_key_of(pinned=[i.pinned for i in self.images], platforms=self.platforms,
                            kubernetes_version=self.kubernetes_version, bottlerocket_version=self.bottlerocket_version)

    def to_state(self) -> dict[str, Any]:
        """The JSON the state machine carries as ``$.plan`` (key names are part of its definition)."""
        return {
            "images": [image.to_state() for image in self.images],
            "platforms": list(self.platforms),
            "kubernetesVersion": self.kubernetes_version,
            "amiId": self.ami_id,
            "bottlerocketVersion": self.bottlerocket_version,
            "force": self.force,
            "trigger": self.trigger,
            "debounceSeconds": self.debounce_seconds,
            "pollIntervalSeconds": self.poll_interval_seconds,
            "maxPolls": self.max_polls,
            "commandMaxPolls": self.command_max_polls,
            "gateMaxPolls": self.gate_max_polls,
            "cuda": [verdict.to_dict() for verdict in self.cuda],
            "buildKey": self.build_key,
        }

    @classmethod
    def from_state(cls, data: Any) -> BuildPlan:
        if not isinstance(data, dict):
            raise _malformed("plan", data, "the object ResolveInput returns")
        images = _typed(data, "images", list, "plan")
        platforms = _typed(data, "platforms", list, "plan")
        if not all(isinstance(p, str) for p in platforms):
            raise _malformed("plan.platforms", platforms, "a list of strings")
        cuda = _typed(data, "cuda", list, "plan")
        return cls(
            images=tuple(PlannedImage.from_state(image, f"plan.images[{i}]") for i, image in enumerate(images)),
            platforms=tuple(platforms),
            kubernetes_version=_typed(data, "kubernetesVersion", str, "plan"),
            ami_id=_typed(data, "amiId", str, "plan"),
            bottlerocket_version=_typed(data, "bottlerocketVersion", str, "plan"),
            force=_typed(data, "force", bool, "plan"),
            trigger=_typed(data, "trigger", str, "plan"),
            debounce_seconds=_typed(data, "debounceSeconds", int, "plan"),
            poll_interval_seconds=_typed(data, "pollIntervalSeconds", int, "plan"),
            max_polls=_typed(data, "maxPolls", int, "plan"),
            command_max_polls=_typed(data, "commandMaxPolls", int, "plan"),
            gate_max_polls=_typed(data, "gateMaxPolls", int, "plan"),
            cuda=tuple(_verdict(v, f"plan.cuda[{i}]") for i, v in enumerate(cuda)),
        )


def build_key_of(*, pinned: list[str], platforms: tuple[str, ...] | list[str], kubernetes_version: str,
                 bottlerocket_version: str) -> str:
    """What makes two builds identical: digests, platforms, Kubernetes and Bottlerocket versions.

    Bottlerocket is part of it so a scheduled run rebuilds when a new Bottlerocket release is out.
    """
    key = {
        "pinned": sorted(pinned),
        "platforms": sorted(platforms),
        "kubernetesVersion": kubernetes_version,
        "bottlerocketVersion": bottlerocket_version,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def build_key(metadata: dict[str, Any]) -> str:
    """The build key of a published metadata document (same keys as the plan's state); KeyError/TypeError
    if it lacks them."""
    return build_key_of(pinned=[image["pinned"] for image in metadata["images"]], platforms=metadata["platforms"],
                        kubernetes_version=metadata["kubernetesVersion"], bottlerocket_version=metadata["bottlerocketVersion"])


def _typed(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise _malformed(f"{where}.{key}", None, f"a {kind.__name__}; the key is missing")
    value = data[key]
    # bool is an int in Python, never in the plan
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(f"{where}.{key}", value, f"a {kind.__name__}")
    return value


def _verdict(data: Any, field: str) -> Verdict:
    if not isinstance(data, dict):
        raise _malformed(field, data, "a CUDA verdict object")
    try:
        return Verdict(**data)
    except TypeError as exc:
        raise _malformed(field, data, f"the CUDA gate's verdict fields ({exc})") from None


def _malformed(field: str, value: Any, expected: str) -> InputValidationError:
    return InputValidationError(
        f"{field}: invalid value {value!r}, expected {expected}; the plan is written by ResolveInput, "
        "so start a new execution instead of editing the state"
    )
