"""The version table, dated and cited: what runs with what, and until when.

Read on 2026-12-02 (``TABLE_DATE``); every row names its source. Used at synth (settings.config:
Kubernetes support window, Karpenter and kubectl-layer compatibility) and by the pipeline's first state
(the CUDA gate: the NVIDIA driver of the Bottlerocket variant the snapshot pins). A pair the table does
not know is reported as unknown (a warning), never guessed. Refresh procedure: docs/versions.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

TABLE_DATE = date(2026, 12, 2)

# --- EKS: release and support windows -----------------------------------------------------------------
EKS_CALENDAR_SOURCE = ("awsdocs/amazon-eks-user-guide latest/ug/versioning/kubernetes-versions.adoc (1.33, 1.34); "
                       "endoflife-date/endoflife.date products/amazon-eks.md, which mirrors AWS's release calendar (1.35, 1.36)")
# Billing (AWS Containers blog "Amazon EKS extended support for Kubernetes versions pricing"): per cluster-hour.
EKS_STANDARD_USD_PER_HOUR = 0.10
EKS_EXTENDED_USD_PER_HOUR = 0.60
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class EksRelease:
    kubernetes: str
    released: date
    end_of_standard: date  # extended-support billing starts at 00:00 UTC on this day
    end_of_extended: date


EKS_RELEASES: dict[str, EksRelease] = {r.kubernetes: r for r in (
    EksRelease("1.33", date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29)),
    EksRelease("1.34", date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2)),
    EksRelease("1.35", date(2026, 1, 28), date(2027, 3, 27), date(2028, 3, 27)),
    EksRelease("1.36", date(2026, 6, 2), date(2027, 8, 2), date(2028, 8, 2)),
)}

STANDARD, EXTENDED, ENDED, UNKNOWN = "standard", "extended", "ended", "unknown"


@dataclass(frozen=True)
class Support:
    status: str  # standard | extended | ended | unknown
    message: str


def eks_support(kubernetes: str, today: date) -> Support:
    """Where ``kubernetes`` stands on ``today`` (UTC date) in EKS's calendar; the caller passes the date."""
    release = EKS_RELEASES.get(kubernetes)
    if release is None:
        known = ", ".join(EKS_RELEASES)
        return Support(UNKNOWN, f"Kubernetes {kubernetes} is not in the version table ({known}, read {TABLE_DATE}); "
                                "check EKS's release calendar and refresh settings/versions.py")
    if today >= release.end_of_extended:
        return Support(ENDED, f"Kubernetes {kubernetes} left EKS extended support on {release.end_of_extended}: a new cluster "
                              f"cannot be created on it. Use {newest_in_standard(today) or 'a supported version'}")
    if today >= release.end_of_standard:
        extra = (EKS_EXTENDED_USD_PER_HOUR - EKS_STANDARD_USD_PER_HOUR) * HOURS_PER_MONTH
        return Support(EXTENDED, f"Kubernetes {kubernetes} is in EKS extended support since {release.end_of_standard} (until "
                                 f"{release.end_of_extended}): the cluster bills ${EKS_EXTENDED_USD_PER_HOUR:.2f}/h instead of "
                                 f"${EKS_STANDARD_USD_PER_HOUR:.2f}/h, about ${extra:.0f} more per month (list price). "
                                 f"Use {newest_in_standard(today) or 'a version in standard support'}")
    return Support(STANDARD, f"Kubernetes {kubernetes} is in EKS standard support until {release.end_of_standard}")


def newest_in_standard(today: date) -> str | None:
    current = [r for r in EKS_RELEASES.values() if r.released <= today < r.end_of_standard]
    return max(current, key=lambda r: minor(r.kubernetes)).kubernetes if current else None


def minor(version: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a version: {version!r}")
    return int(m[1]), int(m[2])


# --- Karpenter <-> Kubernetes --------------------------------------------------------------------------------
KARPENTER_SOURCE = "aws/karpenter-provider-aws hack/docs/compatibilitymatrix_gen/compatibility.yaml (main, 2026-08-21; v1.14.1 newest tag)"
# Karpenter minor -> (lowest, highest) Kubernetes minor it supports.
KARPENTER_KUBERNETES: dict[str, tuple[str, str]] = {
    "1.5": ("1.26", "1.33"), "1.6": ("1.26", "1.34"), "1.7": ("1.26", "1.34"), "1.8": ("1.26", "1.34"),
    "1.9": ("1.26", "1.35"), "1.10": ("1.26", "1.35"), "1.11": ("1.26", "1.35"), "1.12": ("1.26", "1.35"),
    "1.13": ("1.26", "1.36"), "1.14": ("1.26", "1.36"),
}


def karpenter_supports(karpenter_version: str, kubernetes: str) -> bool | None:
    """None: that Karpenter minor is not in the table."""
    major_minor = ".".join(karpenter_version.split(".")[:2])
    bounds = KARPENTER_KUBERNETES.get(major_minor)
    if bounds is None:
        return None
    return minor(bounds[0]) <= minor(kubernetes) <= minor(bounds[1])


# --- the CDK kubectl layer (kubectl's version skew: one minor either side of the cluster) ------------------
KUBECTL_LAYER_VERSION = "1.36"  # aws-cdk.lambda-layer-kubectl-v36 2.0.1 (kubectl 1.36.3, Helm 4.2.3; PyPI)


def kubectl_layer_supports(kubernetes: str) -> bool:
    layer = minor(KUBECTL_LAYER_VERSION)
    return abs(minor(kubernetes)[1] - layer[1]) <= 1 and minor(kubernetes)[0] == layer[0]


# --- Bottlerocket NVIDIA variants: driver branch and the highest CUDA it runs ----------------------------------
# Driver branch -> highest CUDA (what nvidia-smi reports): R535 12.2, R570 12.8 (NVIDIA gpu-operator#2620,
# nvidia-smi output in public issues), R580 13.0 (bottlerocket-kernel-kit#357 nvidia-smi "580.126.09 ... CUDA
# Version: 13.0"; NVIDIA data-center driver table: R580 = CUDA 13).
@dataclass(frozen=True)
class NvidiaDriver:
    branch: str
    max_cuda: str
    first: str  # first Bottlerocket release shipping this branch on these variants
    last: str | None  # last such release (None: still current on TABLE_DATE)
    kubernetes_versions: frozenset[str]
    source: str


NVIDIA_DRIVERS: tuple[NvidiaDriver, ...] = (
    NvidiaDriver("R580", "13.0", first="1.53.0", last=None, kubernetes_versions=frozenset({"1.33", "1.34", "1.35", "1.36"}),
                 source="Bottlerocket v1.53.0 CHANGELOG (bottlerocket-os/bottlerocket#4733: all NVIDIA variants to R580); "
                        "variants/aws-k8s-1.35-nvidia and -1.36-nvidia Cargo.toml: kmod-*-nvidia-r580-tesla"),
    # 1.37's NVIDIA variant carries R580 (lts) and R595 (pb) and picks at boot; lts unless the GPU needs pb
    # (bottlerocket-core-kit sources/ghostdog/src/nvidia.rs): T4/A10G/L4 get R580, so R580 bounds the check.
    NvidiaDriver("R580", "13.0", first="1.66.0", last=None, kubernetes_versions=frozenset({"1.37"}),
                 source="variants/aws-k8s-1.37-nvidia/Cargo.toml nvidia-dual-branch; ghostdog nvidia.rs branch selection"),
)


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def nvidia_driver(bottlerocket_version: str, kubernetes: str) -> NvidiaDriver | None:
    """The NVIDIA driver of ``aws-k8s-<kubernetes>-nvidia`` at that Bottlerocket release; None: not in the table."""
    for driver in NVIDIA_DRIVERS:
        if kubernetes not in driver.kubernetes_versions:
            continue
        if _semver(bottlerocket_version) < _semver(driver.first):
            continue
        if driver.last is not None and _semver(bottlerocket_version) > _semver(driver.last):
            continue
        return driver
    return None
