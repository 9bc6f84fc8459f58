"""CUDA gate (first state): can the NVIDIA driver of the Bottlerocket release the snapshot pins run the image?

The nodes run the ``aws-k8s-<kubernetes>-nvidia`` variant of the Bottlerocket version the snapshot is
built with (the EC2NodeClass pins that version). Its NVIDIA driver branch bounds the CUDA it can run
(``versions.NVIDIA_DRIVERS``); the image's ``cuda>=`` requirement (``image_config``) must not exceed it,
or the NVIDIA container runtime refuses the container on the first pod start, after a whole build and
a node launch. So an incompatible pair fails here, before anything is launched; a pair the table does
not know is let through with a warning.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from settings import versions

from .errors import CudaDriverIncompatible
from .image_config import CudaRequirement, parse_version

OK = "compatible"
UNKNOWN = "unknown"
INCOMPATIBLE = "incompatible"


@dataclass(frozen=True)
class Verdict:
    status: str  # compatible | unknown | incompatible
    required: str | None  # CUDA the image needs
    requiredSource: str
    driver: str | None  # NVIDIA driver branch of the variant, e.g. R580
    driverCuda: str | None  # the highest CUDA that driver runs
    bottlerocketVersion: str
    kubernetesVersion: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CONSTRAINT = re.compile(r"(cuda|driver|arch|brand)(>=|<=|==|=|>|<)(\S+)")


def _numbers(value: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", value))


def _constraint(key: str, op: str, value: str, facts: dict[str, Any]) -> bool | None:
    fact = facts.get(key)
    if fact is None:
        return None
    if key in ("brand", "arch"):
        return (fact == value) if op in ("=", "==") else None
    want = _numbers(value)
    have = tuple(fact)[: len(want)]
    if key == "driver" and len(want) > len(tuple(fact)):
        if want[: len(tuple(fact))] == tuple(fact):
            return None  # same branch, the patch level decides: not knowable from the branch alone
        have, want = tuple(fact), want[: len(tuple(fact))]
    return {">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want, "=": have == want, "==": have == want}[op]


def evaluate(expression: str, facts: dict[str, Any]) -> bool | None:
    """libnvidia-container's NVIDIA_REQUIRE_* semantics (nvidia-container-toolkit README): space-separated
    alternatives are ORed, comma-separated constraints ANDed. Facts: ``cuda`` (the driver's CUDA as a tuple),
    ``driver`` (the branch major, e.g. (580,)), ``arch``, ``brand``; an unknown fact makes its constraint unknown.
    Three-valued: True, False, or None (cannot tell)."""
    alternatives: list[bool | None] = []
    for alternative in expression.split():
        values: list[bool | None] = []
        for text in alternative.split(","):
            m = _CONSTRAINT.fullmatch(text)
            values.append(_constraint(m[1], m[2], m[3], facts) if m else None)
        alternatives.append(False if False in values else (None if None in values else True))
    if True in alternatives:
        return True
    return None if None in alternatives or not alternatives else False


def check(requirement: CudaRequirement, *, bottlerocket_version: str, kubernetes_version: str, image: str,
          arch: str = "amd64") -> Verdict:
    driver = versions.nvidia_driver(bottlerocket_version, kubernetes_version)
    variant = f"aws-k8s-{kubernetes_version}-nvidia (Bottlerocket {bottlerocket_version})"
    common: dict[str, Any] = {"required": requirement.version, "requiredSource": requirement.source, "driver": driver.branch if driver else None,
              "driverCuda": driver.max_cuda if driver else None, "bottlerocketVersion": bottlerocket_version,
              "kubernetesVersion": kubernetes_version}
    if requirement.disabled:
        return Verdict(UNKNOWN, message=f"{image} sets NVIDIA_DISABLE_REQUIRE: the runtime checks no CUDA requirement on "
                                        f"{variant}; not checked", **common)
    if requirement.version is None and not requirement.expression:
        return Verdict(UNKNOWN, message=f"{image}: {requirement.source}; cannot check it against {variant}", **common)
    if driver is None:
        return Verdict(UNKNOWN, message=f"{image} needs CUDA {requirement.version}; the NVIDIA driver of {variant} is not in the "
                                        "version table (settings/versions.py): not checked", **common)
    if requirement.expression:
        facts = {"cuda": parse_version(driver.max_cuda), "driver": (int(driver.branch.lstrip("R")),),
                 "arch": {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)}
        outcome = evaluate(requirement.expression, facts)
    else:
        outcome = parse_version(requirement.version or "0.0") <= parse_version(driver.max_cuda)
    if outcome is None:
        return Verdict(UNKNOWN, message=f"{image}: NVIDIA_REQUIRE_CUDA={requirement.expression!r} cannot be decided for {variant} "
                                        f"(driver {driver.branch}, CUDA {driver.max_cuda}): not checked", **common)
    if outcome is False:
        return Verdict(INCOMPATIBLE, message=(
            f"{image} needs CUDA {requirement.version} ({requirement.source}) but {variant} ships NVIDIA driver {driver.branch}, "
            f"which runs CUDA up to {driver.max_cuda}: pods would fail to start. Use a vLLM image built for CUDA <= "
            f"{driver.max_cuda} (coldstart:vllmImageTag), or a Bottlerocket release with a newer driver"), **common)
    return Verdict(OK, message=f"{image} needs CUDA {requirement.version}; {variant} driver {driver.branch} runs up to "
                               f"{driver.max_cuda}", **common)


def enforce(verdict: Verdict) -> Verdict:
    if verdict.status == INCOMPATIBLE:
        raise CudaDriverIncompatible(verdict.message)
    return verdict
