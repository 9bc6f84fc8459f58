"""ResolveInput against moto: defaults, digests, the Bottlerocket AMI, and every bad input named in the error."""

from __future__ import annotations

import re
from typing import Any

import pytest

from coldstart import emulator
from lambdas.snapshot_pipeline.build_plan import BuildPlan
from lambdas.snapshot_pipeline.core import registry_probe
from lambdas.snapshot_pipeline.core.errors import InputValidationError
from lambdas.snapshot_pipeline.steps.resolve_input import resolve_input
from tests.lambdas.conftest import ACCOUNT, BOTTLEROCKET, K8S_VERSION, REGION, VLLM_TAG

DIGEST = "sha256:" + "a" * 64
VLLM = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/vllm/vllm-openai"


def resolve(world: Any, defaults: Any, user_input: Any, probe: Any = None) -> dict[str, Any]:
    """{"plan": ...} as the state machine carries it (the JSON its JSONPath reads)."""
    event = {"input": user_input, "executionArn": "arn:aws:states:us-west-2:123456789012:execution:sm:run",
             "stateMachineArn": "arn:aws:states:us-west-2:123456789012:stateMachine:sm", "startTime": "2026-01-01T00:00:00Z"}
    plan = resolve_input(event, defaults, ecr=world.gaps.client("ecr"), ssm=world.ssm, account=ACCOUNT, region=REGION,
                         probe=probe or world.gaps.anonymous_probe, fetch=emulator.fetch_layer)
    return {"plan": plan.to_state()}


def test_empty_input_uses_config_defaults_and_resolves_the_tag_to_its_digest(world: Any, defaults: Any) -> None:
    plan = resolve(world, defaults, {})["plan"]
    assert plan["images"] == [{"reference": f"{VLLM}:{VLLM_TAG}", "digest": world.digest, "pinned": f"{VLLM}@{world.digest}",
                               "kind": "ecr-private"}]
    assert plan["platforms"] == list(defaults.imagePlatforms)
    assert plan["kubernetesVersion"] == defaults.kubernetesVersion
    assert plan["bottlerocketVersion"] == BOTTLEROCKET  # the parameter's build suffix is dropped
    assert plan["amiId"].startswith("ami-")
    assert plan["trigger"] == "manual" and plan["debounceSeconds"] == 0


def test_ecr_push_event_builds_the_pushed_digest_and_is_debounced(world: Any, defaults: Any) -> None:
    pushed = {"trigger": "ecr", "repositoryName": "vllm/vllm-openai", "imageTag": VLLM_TAG, "imageDigest": world.digest}
    plan = resolve(world, defaults, pushed)["plan"]
    assert plan["images"][0]["pinned"] == f"{VLLM}@{world.digest}"
    assert plan["debounceSeconds"] == defaults.triggerDebounceSeconds


def test_input_overrides_images_platforms_and_version(world: Any, defaults: Any) -> None:
    plan = resolve(world, defaults, {"images": [f"public.ecr.aws/org/tool@{DIGEST}", f"{VLLM}:{VLLM_TAG}"],
                                     "platforms": ["amd64", "arm64"], "force": True})["plan"]
    assert [i["kind"] for i in plan["images"]] == ["ecr-public", "ecr-private"]
    assert plan["platforms"] == ["amd64", "arm64"] and plan["force"] is True


@pytest.mark.parametrize(
    ("user_input", "expected"),
    [
        ({"images": ["not a reference"]}, ["input.images[0]", "'not a reference'", "<registry>/<repository>"]),
        ({"images": ["vllm/vllm-openai:v1"]}, ["images[0]", "no registry host", "docker.io/"]),
        ({"platforms": ["riscv64"]}, ["input.platforms", "riscv64", "amd64, arm64"]),
        ({"images": ["public.ecr.aws/org/tool:latest"]}, ["images[0]", "not pinned by digest", "@sha256:"]),
        ({"images": [f"docker.io/library/nginx@{DIGEST}"]}, ["images[0]", "cannot be pulled anonymously", "copy the image to ECR"]),
        ({"images": [f"{VLLM}:v9.9.9"]}, ["images[0]", "tag 'v9.9.9' is not in ECR repository", "push it first"]),
        ({"images": [f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/missing/repo:v1"]}, ["images[0]", "does not exist", "missing/repo"]),
        ({"images": [f"999999999999.dkr.ecr.{REGION}.amazonaws.com/other:v1"]}, ["another account or region", "pin it"]),
        ({"kubernetesVersion": "1.99"}, ["input.kubernetesVersion", "'1.99'", "no Bottlerocket AMI", "aws-k8s-1.99"]),
        ({"kubernetesVersion": "latest"}, ["input.kubernetesVersion", "'latest'", "such as 1.33"]),
        ({"image": "typo"}, ["input.image", "unknown key", "images"]),
        ({"force": "yes"}, ["input.force", "'yes'", "true or false"]),
        ({"imageDigest": "sha256:short"}, ["input.imageDigest", "sha256:short"]),
        ({"repositoryName": "someone/else", "imageDigest": DIGEST}, ["input.repositoryName", "vllm/vllm-openai"]),
        ({"images": [f"{VLLM}:{VLLM_TAG}"], "imageDigest": DIGEST}, ["either images or imageDigest"]),
        ("[]", ["input: expected a JSON object"]),
    ],
)
def test_bad_input_is_rejected_with_the_field_value_and_fix(world: Any, defaults: Any, user_input: Any, expected: list[str]) -> None:
    with pytest.raises(InputValidationError) as err:
        resolve(world, defaults, user_input)
    for fragment in expected:
        assert fragment in str(err.value)
    assert not world.gaps.calls_to("ec2.run_instances")


def test_an_anonymously_pullable_image_outside_ecr_is_accepted(world: Any, defaults: Any) -> None:
    world.faults.anonymous_registries.add("docker.io")
    plan = resolve(world, defaults, {"images": [f"docker.io/library/nginx@{DIGEST}"]})["plan"]
    assert plan["images"][0] == {"reference": f"docker.io/library/nginx@{DIGEST}", "digest": DIGEST,
                                 "pinned": f"docker.io/library/nginx@{DIGEST}", "kind": "other"}


def test_build_key_changes_with_bottlerocket_version_so_schedules_pick_up_releases(world: Any, defaults: Any) -> None:
    before = resolve(world, defaults, {})["plan"]["buildKey"]
    emulator.seed_bottlerocket(REGION, K8S_VERSION, "1.67.0")
    assert resolve(world, defaults, {})["plan"]["buildKey"] != before


class FakeRegistry:
    """Docker Registry v2 anonymous token flow (what Docker Hub and ghcr.io do)."""

    def __init__(self, token_status: int = 200) -> None:
        self.token_status = token_status
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, url, headers))
        if url.startswith("https://auth.example/token"):
            return self.token_status, {}, b'{"token": "anon"}'
        if headers.get("Authorization") == "Bearer anon":
            return 200, {}, b""
        return 401, {"www-authenticate": 'Bearer realm="https://auth.example/token",service="registry.example"'}, b""


def test_registry_probe_follows_the_anonymous_token_flow() -> None:
    http = FakeRegistry()
    assert registry_probe.anonymous_pull_problem("docker.io", "nginx", DIGEST, http=http) is None
    assert http.requests[0][1] == f"https://registry-1.docker.io/v2/library/nginx/manifests/{DIGEST}"
    assert "scope=repository%3Alibrary%2Fnginx%3Apull" in http.requests[1][1]


def test_registry_probe_reports_a_registry_that_needs_credentials() -> None:
    problem = registry_probe.anonymous_pull_problem("nvcr.io", "nvidia/cuda", DIGEST, http=FakeRegistry(token_status=401))
    assert problem == "the registry offers no anonymous token"


# --- the plan as the state machine carries it ---------------------------------------------------------------------
def test_plan_state_round_trips_and_keeps_the_keys_the_state_machine_reads(world: Any, defaults: Any) -> None:
    state = resolve(world, defaults, {})["plan"]
    plan = BuildPlan.from_state(state)
    assert plan.to_state() == state
    # stacks/pipeline/state_machine.py reads these with JSONPath ($.plan.<key>): they must stay numbers under these names
    assert {k: state[k] for k in ("debounceSeconds", "pollIntervalSeconds", "maxPolls", "commandMaxPolls", "gateMaxPolls")} == {
        "debounceSeconds": 0, "pollIntervalSeconds": defaults.pollIntervalSeconds, "maxPolls": defaults.maxPolls,
        "commandMaxPolls": defaults.command_max_polls, "gateMaxPolls": defaults.gate_max_polls}
    assert state["buildKey"] == plan.build_key


@pytest.mark.parametrize(("change", "field"), [
    (lambda s: s.pop("amiId"), "plan.amiId"),
    (lambda s: s.update(maxPolls="3"), "plan.maxPolls"),
    (lambda s: s.update(force=1), "plan.force"),
    (lambda s: s.update(maxPolls=True), "plan.maxPolls"),
    (lambda s: s["images"][0].pop("digest"), "plan.images[0].digest"),
    (lambda s: s.update(platforms="amd64"), "plan.platforms"),
    (lambda s: s.update(cuda=[{"status": "compatible"}]), "plan.cuda[0]"),
])
def test_a_malformed_plan_is_an_input_validation_error_naming_the_field(world: Any, defaults: Any, change: Any, field: str) -> None:
    state = resolve(world, defaults, {})["plan"]
    change(state)
    with pytest.raises(InputValidationError, match=rf"^{re.escape(field)}: invalid value"):
        BuildPlan.from_state(state)


def test_a_plan_that_is_not_an_object_is_an_input_validation_error() -> None:
    with pytest.raises(InputValidationError, match=r"^plan: invalid value"):
        BuildPlan.from_state(["not", "a", "plan"])
