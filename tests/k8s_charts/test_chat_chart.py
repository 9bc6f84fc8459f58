"""The demo chat app's chart: valid for the cluster's Kubernetes version, locked down, able to reach
vLLM (its egress policy and vLLM's ingress policy both admit the pair) and nothing else."""

from __future__ import annotations

from dataclasses import replace

import cdk8s
import kubernetes_validate
import pytest
import yaml

from k8s_charts.chat import ChatChart, resolve_chat
from settings import names
from settings.config import load_default_config

CFG = load_default_config()
ACCOUNT, REGION = "123456789012", "us-west-2"


def _synth(tmp_path, cfg=CFG, **kwargs) -> dict[str, dict]:  # noqa: ANN001
    props, notes = resolve_chat(cfg, account=ACCOUNT, region=REGION, **kwargs)
    assert props is not None, notes
    app = cdk8s.App(outdir=str(tmp_path))
    ChatChart(app, "chat", props=props)
    app.synth()
    objects = list(yaml.safe_load_all((tmp_path / "chat.k8s.yaml").read_text()))
    return {o["kind"]: o for o in objects}


@pytest.fixture(scope="module")
def chat(tmp_path_factory) -> dict[str, dict]:  # noqa: ANN001
    return _synth(tmp_path_factory.mktemp("chat"), image_tag="git-0123456789ab")


def test_objects_validate_strictly_against_the_clusters_kubernetes_version(chat) -> None:  # noqa: ANN001
    assert set(chat) == {"Deployment", "Service", "NetworkPolicy"}
    for obj in chat.values():
        kubernetes_validate.validate(obj, f"{CFG.kubernetesVersion}.0", strict=True)


def test_image_is_the_private_ecr_repository_at_the_pushed_tag(chat) -> None:  # noqa: ANN001
    [container] = chat["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{CFG.chatRepository}:git-0123456789ab"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["VLLM_BASE_URL"] == f"http://{names.VLLM_APP_LABEL}.{CFG.vllmNamespace}.svc:{names.VLLM_PORT}"
    assert env["SERVED_MODEL_NAME"] == CFG.servedModelName


def test_the_configured_tag_wins_over_the_checkout(tmp_path) -> None:  # noqa: ANN001
    objs = _synth(tmp_path, replace(CFG, chatImageTag="v1"), image_tag="git-0123456789ab")
    assert objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1")


def test_pod_runs_as_the_images_non_root_user_without_token_or_privileges(chat) -> None:  # noqa: ANN001
    pod = chat["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "tolerations" not in pod  # never scheduled onto (and never holds) a GPU node


def test_uid_matches_the_dockerfile_user(chat) -> None:  # noqa: ANN001
    from k8s_charts.chat_image import REPO_ROOT
    users = [line.split()[1] for line in (REPO_ROOT / "apps" / "chat" / "Dockerfile").read_text().splitlines()
             if line.startswith("USER ")]
    uid = chat["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert users and users[-1].split(":")[0] == str(uid)


def test_egress_reaches_only_vllm_and_dns_and_vllm_admits_it(chat, tmp_path) -> None:  # noqa: ANN001
    policy = chat["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    to_vllm, to_dns = policy["egress"]
    assert to_vllm == {"to": [{"podSelector": {"matchLabels": {"app": names.VLLM_APP_LABEL}}}],
                       "ports": [{"port": names.VLLM_PORT, "protocol": "TCP"}]}
    assert {p["protocol"] for p in to_dns["ports"]} == {"UDP", "TCP"} and {p["port"] for p in to_dns["ports"]} == {53}
    # vLLM's own policy admits every pod of its namespace, and the chat pod lives there
    assert chat["Deployment"]["metadata"]["namespace"] == CFG.vllmNamespace
    from chart_helpers import synth
    manifests, _ = synth(CFG, None)
    [vllm_policy] = [o for objs in manifests.values() for o in objs
                     if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == names.VLLM_APP_LABEL]
    assert {"podSelector": {}} in vllm_policy["spec"]["ingress"][0]["from"]


def test_service_is_cluster_internal_on_the_named_port(chat) -> None:  # noqa: ANN001
    spec = chat["Service"]["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [{"name": "http", "port": names.CHAT_SERVICE_PORT, "protocol": "TCP", "targetPort": "http"}]


@pytest.mark.parametrize(("cfg", "account", "fragment"), [
    (replace(CFG, chatEnabled=False), ACCOUNT, None),
    (CFG, None, "account/region unknown"),
])
def test_no_chart_when_disabled_or_the_image_cannot_be_named(cfg, account, fragment) -> None:  # noqa: ANN001
    props, notes = resolve_chat(cfg, account=account, region=REGION, image_tag="git-0123456789ab")
    assert props is None
    assert (notes == ()) if fragment is None else (fragment in notes[0] and "chatEnabled=false" in notes[0])


def test_the_apps_default_upstream_is_the_vllm_service_the_chart_makes() -> None:
    # apps/chat is its own image and imports no project package, so this test keeps the two in step
    from apps.chat.config import DEFAULT_VLLM_BASE_URL
    from k8s_charts.chat import ChatProps
    assert DEFAULT_VLLM_BASE_URL == ChatProps(namespace=CFG.vllmNamespace, image="x", served_model_name="m").vllm_base_url
