"""The version table's rules at synth: EKS support windows (dates injected, never the clock), the
Karpenter/Kubernetes matrix and the kubectl layer's skew; each failure names the key, the value and the fix."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from settings import versions
from settings.config import ConfigError, kubernetes_support, load_default_config

TODAY = versions.TABLE_DATE  # 2026-12-02


@pytest.mark.parametrize(("kubernetes", "today", "status"), [
    ("1.36", TODAY, versions.STANDARD),
    ("1.35", TODAY, versions.STANDARD),
    ("1.34", date(2026, 12, 1), versions.STANDARD),  # the last day before extended billing
    ("1.34", TODAY, versions.EXTENDED),  # extended billing starts 00:00 UTC on the end-of-standard date
    ("1.33", TODAY, versions.EXTENDED),
    ("1.33", date(2027, 7, 29), versions.ENDED),
    ("1.38", TODAY, versions.UNKNOWN),
])
def test_eks_support_windows(kubernetes: str, today: date, status: str) -> None:
    assert versions.eks_support(kubernetes, today).status == status


def test_extended_support_names_the_extra_monthly_cost_and_the_way_out() -> None:
    message = versions.eks_support("1.34", TODAY).message
    assert "extended support since 2026-12-02" in message and "$0.60/h" in message and "$365 more per month" in message
    assert "Use 1.36" in message  # the newest version in standard support on that day


def test_the_defaults_are_in_standard_support_on_the_day_of_the_change() -> None:
    assert kubernetes_support(load_default_config(), TODAY).status == versions.STANDARD
    assert versions.newest_in_standard(TODAY) == load_default_config().kubernetesVersion


def test_a_version_past_extended_support_fails_synth_naming_the_key() -> None:
    cfg = load_default_config(kubernetesVersion="1.35", karpenterVersion="1.14.1")
    with pytest.raises(ConfigError, match=r"coldstart:kubernetesVersion: invalid value '1.35'; .*left EKS extended support on 2028-03-27"):
        kubernetes_support(cfg, date(2028, 3, 27))


def test_build_app_refuses_an_ended_version_and_warns_on_extended_support(tmp_path: Path) -> None:
    from app import build_app, new_app

    cfg = load_default_config(kubernetesVersion="1.35")
    with pytest.raises(ConfigError, match="left EKS extended support"):
        build_app(new_app(outdir=str(tmp_path / "a")), cfg, today=date(2028, 4, 1))
    stacks = build_app(new_app(outdir=str(tmp_path / "b")), cfg, today=date(2027, 4, 1))
    warnings = [m.data for m in stacks["cluster"].node.metadata if m.type == "aws:cdk:warning"]
    assert any("extended support since 2027-03-27" in str(w) and "$365" in str(w) for w in warnings), warnings


@pytest.mark.parametrize(("overrides", "fragments"), [
    ({"karpenterVersion": "1.8.2"}, ["coldstart:karpenterVersion: invalid value '1.8.2'", "'1.36'", "1.26-1.34"]),
    ({"karpenterVersion": "1.99.0"}, ["coldstart:karpenterVersion: invalid value '1.99.0'", "not in the version table"]),
    ({"kubernetesVersion": "1.33"}, ["coldstart:kubernetesVersion: invalid value '1.33'", "kubectl 1.36", "lambda-layer-kubectl"]),
])
def test_pairs_outside_the_matrix_fail_at_config_load(overrides: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_default_config(**overrides)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_every_karpenter_row_and_driver_row_is_well_formed() -> None:
    for low, high in versions.KARPENTER_KUBERNETES.values():
        assert versions.minor(low) <= versions.minor(high)
    for driver in versions.NVIDIA_DRIVERS:
        assert driver.branch.startswith("R") and driver.source
        assert versions.nvidia_driver(driver.first, sorted(driver.kubernetes_versions)[0]) is not None
    assert versions.nvidia_driver("1.52.9", "1.36") is None  # before R580 reached the variants: unknown, not guessed
