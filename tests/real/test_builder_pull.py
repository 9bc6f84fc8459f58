"""The pull document, as SYNTHESIZED into the pipeline template, run on the Bottlerocket host model
(tests/real/host_model.py) against real containerd 2.1, the distribution registry and skopeo; its
real output then drives the real state machine (moto's interpreter, the real handlers).

Success: both platforms pulled and unpacked, managed+pinned labels on the digest and tag references,
``ctr images check`` complete, the verify step accepting the real ``ctr`` output, and a copy of
containerd's root opened by a fresh containerd listing the images complete (what a node restored
from the snapshot finds). Faults with the same real parts each end in the failure path with a named
error, the previous snapshot ID kept, nothing left behind.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coldstart import emulator
from lambdas.snapshot_pipeline.core import errors
from lambdas.snapshot_pipeline.steps import pull, pull_script
from settings import names
from tests.lambdas.conftest import PREVIOUS_SNAPSHOT, VLLM_TAG
from tests.real import host_model, oci_image
from tests.real.conftest import CONTAINERD_DIR, require_binary, require_root

REPO, TAG = "vllm/vllm-openai", VLLM_TAG  # the repository and tag the pipeline's default config builds
HELPER = "coldstart/helper"
PLATFORMS = ["amd64", "arm64"]


@pytest.fixture(autouse=True)
def _real_parts() -> None:
    require_root()
    for name in ("docker-registry", "skopeo", "htpasswd", "jq", "openssl", "unshare", "gcc"):
        require_binary(name)
    require_binary("containerd 2.1", CONTAINERD_DIR / "containerd")


def synthesized_document(template: dict[str, Any]) -> dict[str, Any]:
    """The pull document's content exactly as CloudFormation would create it from the template."""
    (content,) = [r["Properties"]["Content"] for r in template["Resources"].values() if r["Type"] == "AWS::SSM::Document"]
    return content if isinstance(content, dict) else json.loads(content)


def images_for(built: oci_image.Built, helper: oci_image.Built) -> list[dict[str, str]]:
    registry = host_model.ECR_REGISTRY
    return [
        {"pinned": f"{registry}/{REPO}@{built.index_digest}", "reference": f"{registry}/{REPO}:{TAG}", "digest": built.index_digest,
         "kind": "ecr-private"},
        # digest-only record (no tag to add)
        {"pinned": f"{registry}/{HELPER}@{helper.index_digest}", "reference": f"{registry}/{HELPER}@{helper.index_digest}",
         "digest": helper.index_digest, "kind": "ecr-private"},
    ]


def run_on_host(tmp_path: Path, template: dict[str, Any], scenario: host_model.Scenario, *,
                pushed: tuple[str, ...] = ("amd64", "arm64"), admin_wait: int = 4, push_vllm: bool = True) -> tuple[host_model.HostRun, list[dict[str, str]], oci_image.Built]:
    built = oci_image.build(tmp_path / "oci-vllm", pushed)
    helper = oci_image.build(tmp_path / "oci-helper", ("amd64", "arm64"))
    if scenario.delete_layer:
        scenario.extra["layer_digest"] = built.layers[scenario.delete_layer]
    images = images_for(built, helper)
    parameters = {**pull_script.command_parameters(images, PLATFORMS, host_model.DATA_VOLUME_ID),
                  pull_script.ADMIN_WAIT_SECONDS: [str(admin_wait)]}
    text = pull_script.render_commands(synthesized_document(template), parameters)
    layouts = {f"{REPO}:{TAG}": built.layout, f"{HELPER}:any": helper.layout}
    if not push_vllm:
        del layouts[f"{REPO}:{TAG}"]
    run = host_model.run(tmp_path / "host", text, scenario, layouts)
    return run, images, built


def test_the_synthesized_document_pulls_pins_and_unpacks_both_platforms_on_the_host_model(
        tmp_path: Path, pipeline_template: dict[str, Any]) -> None:
    # Given the document from the template, run by sh in the control container of the host model
    run, images, built = run_on_host(tmp_path, pipeline_template, host_model.Scenario())
    print(run.read("versions"))  # the versions this layer ran (shown with -s / in make test-real)
    # Then it succeeds, checked containerd's root against the data volume, and leaks no credential
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"= {host_model.DATA_VOLUME_ID}" in run.stdout
    assert host_model.Scenario().token not in run.stdout + run.stderr + json.dumps(synthesized_document(pipeline_template))
    # and the verify step accepts the REAL ctr output: digest, both platforms, labels, complete, unpacked
    assert pull_script.verification_problems(run.stdout, images, PLATFORMS) == []
    lines = pull_script.parse_verify_lines(run.stdout)
    assert lines[images[0]["pinned"]]["platforms"] == "linux/amd64,linux/arm64"
    # and the "snapshot" (a copy of containerd's root) opened by a fresh containerd lists every reference
    # complete, with the labels kubelet honours, and one unpacked snapshot per platform layer
    listed = {row.split()[0]: row for row in run.read("restored-images-ls").splitlines()[1:] if row.strip()}
    assert set(listed) == {images[0]["pinned"], images[0]["reference"], images[1]["pinned"]}
    for row in listed.values():
        assert names.CRI_PINNED_LABEL in row and names.CRI_MANAGED_LABEL in row and "linux/amd64,linux/arm64" in row
    checked = [row for row in run.read("restored-images-check").splitlines()[1:] if row.strip()]
    assert len(checked) == 3 and all(" complete (" in row and row.rstrip().endswith(" true") for row in checked)
    snapshot_keys = {row.split()[0] for row in run.read("restored-snapshots").splitlines()[1:] if row.strip()}
    assert set(built.diff_ids.values()) <= snapshot_keys  # amd64 AND arm64 layers unpacked


def test_the_host_has_no_shell_so_a_script_handed_to_sheltie_fails(tmp_path: Path, pipeline_template: dict[str, Any]) -> None:
    """The model refuses what the real host refuses: the old `sheltie bash -c` hand-over exits 127."""
    run, _, _ = run_on_host(tmp_path, pipeline_template, host_model.Scenario())
    assert run.returncode == 0
    sheltie = tmp_path / "host" / "admin-bin" / "sheltie"
    old = subprocess.run([str(sheltie), "bash", "-c", "true"], capture_output=True, text=True, check=False)
    assert old.returncode == 127, (old.returncode, old.stderr)
    host_binaries = sorted(str(p.relative_to(tmp_path / "host" / "hostroot")) for p in (tmp_path / "host" / "hostroot").rglob("*")
                           if p.is_file() and p.stat().st_mode & 0o111)
    assert not [b for b in host_binaries if Path(b).name in ("sh", "bash", "dash", "busybox")]
    assert set(host_binaries) <= set(host_model.HOST_FILES)


FAULTS = [
    # (id, scenario, platforms built, named error, cause fragment); "not-pushed": ECR has it, the registry does not
    # the first state already reads the index from ECR: no launch at all (the builder's verify would also refuse it,
    # see test_a_platform_missing_from_the_index_is_pulled_without_error_and_refused_by_verify)
    ("platform-missing", host_model.Scenario(), ("amd64",), errors.InputValidationError, "no linux/arm64 image in its index"),
    ("layer-deleted", host_model.Scenario(delete_layer="arm64"), ("amd64", "arm64"), errors.ImageNotFound, "not found"),
    ("image-missing", host_model.Scenario(), ("amd64", "arm64", "not-pushed"), errors.ImageNotFound, "not found"),
    ("wrong-password", host_model.Scenario(registry_password="rotated-elsewhere"), ("amd64", "arm64"), errors.RegistryAuthFailed,
     "401 Unauthorized"),
    ("registry-down", host_model.Scenario(registry_up=False), ("amd64", "arm64"), errors.RegistryUnreachable, "connection refused"),
    ("admin-never-ready", host_model.Scenario(admin_failures=10_000), ("amd64", "arm64"), errors.AdminContainerNotReady,
     "host-containers.admin"),
    ("local-on-wrong-device", host_model.Scenario(data_serial="vol0ffffffffffffffff"), ("amd64", "arm64"), errors.DataVolumeNotMounted,
     "not on the data volume vol-0123456789abcdef0"),
]


@pytest.mark.parametrize(("scenario", "pushed", "error", "cause"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_a_fault_on_the_real_host_fails_the_pipeline_with_a_named_error_and_keeps_the_published_id(
        tmp_path: Path, pipeline_template: dict[str, Any], world: Any, scenario: host_model.Scenario, pushed: tuple[str, ...],
        error: type[Exception], cause: str) -> None:
    # Given the document run on the host model with one real fault
    platforms = tuple(p for p in pushed if p != "not-pushed")
    run, images, built = run_on_host(tmp_path, pipeline_template, scenario, pushed=platforms, admin_wait=2,
                                     push_vllm="not-pushed" not in pushed)
    # When the state machine builds that very image (ECR holds the same index under its digest; moto
    # does not compute digests, so the test states it) and reads
    # the command's REAL outcome (SSM status from the script's exit code, its real stdout)
    assert emulator.seed_ecr_from_oci_layout(world.ecr, REPO, TAG, built.layout) == built.index_digest
    pipeline = world.deploy(pipeline_template)
    world.publish_previous()
    world.faults.command_status = ["Success" if run.returncode == 0 else "Failed"]
    world.faults.command_stdout = run.stdout
    result = pipeline.run({"platforms": PLATFORMS})
    # Then the execution fails with the named error, nothing is published, nothing is left behind
    assert result.status == "FAILED"
    assert result.error == error.__name__, (result.error, result.cause, run.stdout)
    assert cause in result.cause
    assert world.parameter() == PREVIOUS_SNAPSHOT
    assert world.live_instances() == [] and world.snapshots() == []
    assert [v for v in world.volumes() if v.get("Attachments")] == []
    # and the same output read directly names the same error
    if run.returncode != 0:
        assert type(pull.failure_error(run.stdout)) is error


def test_a_platform_missing_from_the_index_is_pulled_without_error_and_refused_by_verify(
        tmp_path: Path, pipeline_template: dict[str, Any]) -> None:
    """Real ctr 2.1 exits 0 when a requested platform is not in the index; the verify step must catch it."""
    run, images, _ = run_on_host(tmp_path, pipeline_template, host_model.Scenario(), pushed=("amd64",))
    assert run.returncode == 0, run.stdout
    problems = pull_script.verification_problems(run.stdout, images, PLATFORMS)
    assert problems == [f"{images[0]['pinned']}: platform linux/arm64 missing"]


@pytest.mark.parametrize(("request_json", "error"), [
    ('{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"X/a"}', "is not supported"),
    ('{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"Foo","image":"X/a"}', "expected CredentialProviderRequest"),
    ('{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":""}', "image in plugin request was empty"),
    ('{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"registry.example/a"}',
     "registry.example is not a valid ECR repository URL"),
])
def test_the_credential_provider_double_enforces_the_v1_protocol(tmp_path: Path, request_json: str, error: str) -> None:
    """The double refuses what cloud-provider-aws's plugin.go/main.go refuse (exit 1, message on stderr)."""
    binary = tmp_path / "provider"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(host_model.HERE / "ecr-credential-provider.c")], check=True)
    run = subprocess.run([str(binary)], input=request_json.replace("X", host_model.ECR_REGISTRY), capture_output=True, text=True, check=False)
    assert run.returncode == 1 and error in run.stderr and run.stdout == ""
