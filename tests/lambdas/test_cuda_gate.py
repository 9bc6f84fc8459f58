"""The CUDA gate: the image's CUDA requirement read from its config in (moto's) ECR, against the NVIDIA
driver of the Bottlerocket variant the snapshot pins; incompatible fails the first state, unknown warns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coldstart import emulator
from lambdas.snapshot_pipeline.core import cuda_gate, image_config
from lambdas.snapshot_pipeline.core.errors import CudaDriverIncompatible, InputValidationError
from settings import names, versions
from tests.lambdas.conftest import PREVIOUS_SNAPSHOT, VLLM_TAG

REPO = "vllm/vllm-openai"
NEWEST = max(versions.NVIDIA_DRIVERS, key=lambda d: image_config.parse_version(d.max_cuda))


def bump(version: str) -> str:
    major, minor = image_config.parse_version(version)
    return f"{major}.{minor + 1}"


def env_of(world: Any, digest: str, arch: str = "amd64") -> list[str]:
    return image_config.image_env(world.gaps.client("ecr"), repository=REPO, digest=digest, arch=arch, field="input.imageTag",
                                  fetch=emulator.fetch_layer)


@pytest.mark.parametrize(("env", "version", "source"), [
    (["NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=tesla,driver>=470,driver<471", "CUDA_VERSION=12.8.1"], "12.8", "NVIDIA_REQUIRE_CUDA=cuda>=12.8"),
    (["PATH=/usr/bin", "CUDA_VERSION=13.0.1"], "13.0", "CUDA_VERSION=13.0.1"),
    (["PATH=/usr/bin"], None, "the image config sets neither NVIDIA_REQUIRE_CUDA nor CUDA_VERSION"),
])
def test_the_requirement_is_read_from_the_image_config_by_digest(world: Any, env: list[str], version: str | None, source: str) -> None:
    digest = emulator.seed_ecr_image_with_config(world.ecr, REPO, "cuda-test", env=env)
    requirement = image_config.cuda_requirement(env_of(world, digest))
    assert (requirement.version, requirement.source) == (version, source)


def test_an_index_without_the_builder_platform_and_a_missing_digest_are_named(world: Any) -> None:
    digest = emulator.seed_ecr_image_with_config(world.ecr, REPO, "arm-only", env=["CUDA_VERSION=12.8.1"], arches=("arm64",))
    with pytest.raises(InputValidationError, match="no linux/amd64 image in its index"):
        env_of(world, digest)
    with pytest.raises(InputValidationError, match="cannot be read from ECR"):
        env_of(world, "sha256:" + "f" * 64)


def test_a_tampered_config_blob_is_refused(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = emulator.seed_ecr_image_with_config(world.ecr, REPO, "tampered", env=["CUDA_VERSION=12.8.1"])
    with pytest.raises(InputValidationError, match="does not match its digest"):
        image_config.image_env(world.gaps.client("ecr"), repository=REPO, digest=digest, arch="amd64", field="f",
                               fetch=lambda url: b'{"config": {"Env": ["CUDA_VERSION=99.0"]}}')


def test_the_verdict_for_each_driver_in_the_table() -> None:
    for driver in versions.NVIDIA_DRIVERS:
        k8s = sorted(driver.kubernetes_versions)[0]
        ok = cuda_gate.check(image_config.CudaRequirement(driver.max_cuda, "CUDA_VERSION"), bottlerocket_version=driver.first,
                             kubernetes_version=k8s, image="img")
        assert ok.status == cuda_gate.OK and ok.driver == driver.branch, ok
        too_new = cuda_gate.check(image_config.CudaRequirement(bump(driver.max_cuda), "NVIDIA_REQUIRE_CUDA=cuda>=x"),
                                  bottlerocket_version=driver.first, kubernetes_version=k8s, image="img")
        assert too_new.status == cuda_gate.INCOMPATIBLE
        # the message names both versions and the fix
        assert bump(driver.max_cuda) in too_new.message and driver.branch in too_new.message and driver.first in too_new.message
        with pytest.raises(CudaDriverIncompatible, match=driver.branch):
            cuda_gate.enforce(too_new)


@pytest.mark.parametrize(("expression", "outcome"), [
    ("cuda>=13.0 brand=tesla,driver>=535,driver<536", True),  # vLLM's CUDA 13.0 image on R580
    ("cuda>=12.8 brand=tesla,driver>=470,driver<471 brand=tesla,driver>=535,driver<536", True),  # v0.11-era 12.8
    ("cuda>=13.1 brand=tesla,driver>=535,driver<536", False),  # too new; R580 is not a 535.x driver
    ("cuda>=13.1 brand=tesla,driver>=580,driver<581", None),  # a 580.x forward-compat clause: the brand decides
    ("cuda>=13.1,arch=x86_64 cuda>=12.0,arch=aarch64", False),
    ("cuda>=12.0,driver>=580.65", None),  # the patch level decides
])
def test_the_requirement_expression_is_evaluated_like_the_nvidia_runtime(expression: str, outcome: bool | None) -> None:
    """Space-separated alternatives OR, comma-separated constraints AND (nvidia-container-toolkit README)."""
    facts = {"cuda": (13, 0), "driver": (580,), "arch": "x86_64"}
    assert cuda_gate.evaluate(expression, facts) is outcome


def test_unknown_pairs_pass_with_a_warning() -> None:
    unknown_release = cuda_gate.check(image_config.CudaRequirement("12.8", "CUDA_VERSION"), bottlerocket_version="0.0.1",
                                      kubernetes_version="1.35", image="img")
    assert unknown_release.status == cuda_gate.UNKNOWN and "not in the version table" in unknown_release.message
    no_requirement = cuda_gate.check(image_config.CudaRequirement(None, "neither"), bottlerocket_version=NEWEST.first,
                                     kubernetes_version=sorted(NEWEST.kubernetes_versions)[0], image="img")
    assert no_requirement.status == cuda_gate.UNKNOWN
    assert cuda_gate.enforce(unknown_release) is unknown_release



@pytest.mark.e2e
def test_an_image_the_driver_cannot_run_fails_the_first_state_and_launches_nothing(world: Any, pipeline_template: dict) -> None:
    # Given the configured tag now points at an image needing a CUDA newer than R580's 13.0
    too_new = ["NVIDIA_REQUIRE_CUDA=cuda>=13.1 brand=tesla,driver>=535,driver<536", "CUDA_VERSION=13.1.0"]
    emulator.seed_ecr_image(world.ecr, REPO, VLLM_TAG, env=too_new)
    pipeline = world.deploy(pipeline_template)
    world.publish_previous()
    result = pipeline.run({})
    # Then the run fails in ResolveInput with the named error naming both versions; nothing was launched or published
    assert result.status == "FAILED" and result.error == CudaDriverIncompatible.__name__, result.cause
    assert "CUDA 13.1" in result.cause and "R580" in result.cause and "13.0" in result.cause
    assert world.gaps.calls_to("ec2.run_instances") == []
    assert world.parameter() == PREVIOUS_SNAPSHOT


@pytest.mark.e2e
def test_a_compatible_image_records_its_verdict_in_the_published_metadata(world: Any, pipeline_template: dict) -> None:
    pipeline = world.deploy(pipeline_template)
    result = pipeline.run({})
    assert result.status == "SUCCEEDED", result.cause
    metadata = json.loads(world.parameter(names.metadata_parameter_name(names.DEFAULT_SNAPSHOT_PARAMETER)))
    assert metadata["cuda"] == [{"status": "compatible", "required": "13.0", "driver": "R580", "driverCuda": "13.0"}]
