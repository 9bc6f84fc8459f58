"""build-push-images, chat-url and smoke: the demo chat app's runbook steps.

The container CLI is a recording stand-in for docker's documented interface (`docker build --platform
--tag CTX`, `docker login --username U --password-stdin REGISTRY`, `docker push REF`; docs.docker.com
reference/cli/docker); ECR and CloudFormation are moto; kubectl port-forward is a stand-in printing the
line client-go prints (`Forwarding from 127.0.0.1:<port> -> <port>`, kubernetes/client-go
tools/portforward/portforward.go) in front of the fake vLLM server of tests/apps.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from coldstart.ops import images as image_ops
from settings import names
from settings.config import load_default_config
from tests.coldstart.conftest import REGION, create_stack_with_outputs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
from fake_vllm import MODEL, FakeVllm  # noqa: E402

CFG = load_default_config()
REPO_URI = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{CFG.chatRepository}"


def _recording_cli(bin_dir: Path, name: str, log: Path) -> Path:
    """An executable that appends {argv, stdin} to `log` as one JSON line and exits 0."""
    path = bin_dir / name
    path.write_text(f"""#!{sys.executable}
import json, sys
stdin = sys.stdin.read() if "--password-stdin" in sys.argv else None
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
""")
    path.chmod(0o755)
    return path


@pytest.fixture
def repo_clone(tmp_path: Path) -> Path:
    """A committed git checkout holding apps/chat (the tag is its commit)."""
    root = tmp_path / "repo"
    (root / "apps" / "chat").mkdir(parents=True)
    (root / "apps" / "chat" / "Dockerfile").write_text("FROM scratch\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "chat"]):
        subprocess.run(["git", "-C", str(root), *argv], check=True, env=env, capture_output=True)
    return root


@pytest.fixture
def pushed_env(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_clone: Path) -> Path:  # noqa: ANN001
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "docker.jsonl"
    _recording_cli(bin_dir, "docker", log)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    monkeypatch.delenv(image_ops.ENV_CONTAINER_CLI, raising=False)
    monkeypatch.setattr(image_ops, "REPO_ROOT", repo_clone)
    monkeypatch.setattr("k8s_charts.chat_image.REPO_ROOT", repo_clone)
    boto3.client("ecr", region_name=REGION).create_repository(repositoryName=CFG.chatRepository,
                                                              imageTagMutability="IMMUTABLE")
    create_stack_with_outputs(names.STORAGE_STACK, {names.OUTPUT_CHAT_REPOSITORY_URI: REPO_URI})
    return log


def _head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_build_push_tags_by_commit_and_sends_the_password_on_stdin_only(cli, pushed_env: Path, repo_clone: Path) -> None:  # noqa: ANN001
    result = cli("--region", REGION, "build-push-images")
    assert result.exit_code == 0, result.output
    calls = [json.loads(line) for line in pushed_env.read_text().splitlines()]
    image = f"{REPO_URI}:git-{_head(repo_clone)}"
    assert [c["argv"][0] for c in calls] == ["build", "login", "push"]
    assert calls[0]["argv"] == ["build", "--platform", "linux/amd64", "--tag", image, str(repo_clone / "apps" / "chat")]
    # moto's token is base64 "AWS:<password>" like ECR's; the password only ever travels on stdin
    token = boto3.client("ecr", region_name=REGION).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().partition(":")[2]
    assert calls[1]["argv"] == ["login", "--username", "AWS", "--password-stdin", REPO_URI.split("/")[0]]
    assert calls[1]["stdin"] == password and all(password not in " ".join(c["argv"]) for c in calls)
    assert password not in result.output
    assert calls[2]["argv"] == ["push", image]
    assert f"pushed {image}" in result.output


def test_an_already_pushed_tag_is_not_rebuilt(cli, pushed_env: Path, repo_clone: Path) -> None:  # noqa: ANN001
    boto3.client("ecr", region_name=REGION).put_image(
        repositoryName=CFG.chatRepository, imageTag=f"git-{_head(repo_clone)}",
        imageManifest=json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                                  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                                             "digest": "sha256:" + "c" * 64}, "layers": []}))
    result = cli("--region", REGION, "build-push-images")
    assert result.exit_code == 0, result.output
    assert "already in ECR" in result.output
    assert not pushed_env.exists()


def test_uncommitted_app_changes_are_refused_before_anything_runs(cli, pushed_env: Path, repo_clone: Path) -> None:  # noqa: ANN001
    (repo_clone / "apps" / "chat" / "Dockerfile").write_text("FROM scratch\nUSER 1\n")
    result = cli("--region", REGION, "build-push-images")
    assert result.exit_code == 1
    assert "apps/chat has uncommitted changes" in result.output and "commit them first" in result.output
    assert not pushed_env.exists()


def test_no_container_cli_is_one_line_naming_both_and_the_override(cli, aws, monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(image_ops.ENV_CONTAINER_CLI, raising=False)
    result = cli("--region", REGION, "build-push-images")
    assert result.exit_code == 1
    [line] = [ln for ln in result.output.splitlines() if ln.strip()]
    assert "neither docker nor finch" in line and image_ops.ENV_CONTAINER_CLI in line and "Traceback" not in result.output


def test_finch_is_used_when_docker_is_absent(tmp_path: Path) -> None:
    _recording_cli(tmp_path, "finch", tmp_path / "log")
    assert image_ops.find_container_cli({"PATH": str(tmp_path)}) == str(tmp_path / "finch")


@pytest.mark.parametrize(("instance_type", "platform"), [
    ("m6i.large", "linux/amd64"), ("m7g.large", "linux/arm64"), ("c6gn.xlarge", "linux/arm64"),
    ("t4g.small", "linux/arm64"), ("g5.xlarge", "linux/amd64"), ("r8gd.large", "linux/arm64"),
])
def test_platform_follows_the_system_nodes_architecture(instance_type: str, platform: str) -> None:
    assert image_ops.platform_for(instance_type) == platform


def test_chat_url_prints_the_port_forward(cli) -> None:  # noqa: ANN001
    result = cli("chat-url")
    assert result.exit_code == 0
    assert f"kubectl port-forward -n {CFG.vllmNamespace} svc/{names.CHAT_APP_LABEL} 8080:{names.CHAT_SERVICE_PORT}" in result.output


# --- smoke ------------------------------------------------------------------------------------------


@pytest.fixture
def vllm():  # noqa: ANN201
    server = FakeVllm()
    try:
        yield server
    finally:
        server.close()


def test_smoke_against_a_url_prints_ttft_tokens_per_second_and_total(cli, vllm) -> None:  # noqa: ANN001
    result = cli("smoke", "--url", vllm.url)
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"model {MODEL} | TTFT ") and "tokens/s" in line and "| total " in line


def test_smoke_fails_with_one_line_when_the_model_is_starting(cli, vllm) -> None:  # noqa: ANN001
    vllm.mode = "503"
    result = cli("smoke", "--url", vllm.url)
    assert result.exit_code == 1
    assert "503" in result.output and "Traceback" not in result.output


def test_smoke_without_url_port_forwards_and_stops_kubectl(cli, vllm, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    port = vllm.url.rsplit(":", 1)[1]
    pid_file = tmp_path / "kubectl.pid"
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"""#!{sys.executable}
import os, sys, time
if sys.argv[1:3] == ["config", "current-context"]:
    print("test"); sys.exit(0)
assert sys.argv[1] == "port-forward", sys.argv
open({str(pid_file)!r}, "w").write(str(os.getpid()))
print("Forwarding from 127.0.0.1:{port} -> {names.VLLM_PORT}", flush=True)
while True:
    time.sleep(3600)  # until terminated, like kubectl
""")
    kubectl.chmod(0o755)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = cli("smoke")
    assert result.exit_code == 0, result.output
    assert f"model {MODEL} | TTFT" in result.output
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


# --- doctor's serving check -----------------------------------------------------------------------


class _PodsOnly:
    def __init__(self, pods: list[str]) -> None:
        self.pods = pods

    def get_json(self, *args: str) -> dict:
        assert args[:2] == ("get", "pods"), args
        return {"items": [{"metadata": {"name": name}} for name in self.pods]}


def _serving(vllm, pods: list[str]):  # noqa: ANN001, ANN202
    from coldstart.ops import doctor as doctor_ops
    from coldstart.ops.smoke import run_smoke
    ctx = doctor_ops.DoctorContext(config=CFG, ssm=None, ec2=None, cfn=None, eks=None, manifests_dir=Path("."),
                                   kubectl=_PodsOnly(pods), smoke=lambda: run_smoke(vllm.url, timeout=30))
    serving = [(name, check) for name, check in doctor_ops.CHECKS if check is doctor_ops.check_serving]
    assert [name for name, _ in serving] == ["model answers a chat completion"]
    original = doctor_ops.CHECKS
    doctor_ops.CHECKS = serving  # only this check: the others need AWS, which has its own tests (test_doctor.py)
    try:
        [result] = doctor_ops.run_checks(ctx)
    finally:
        doctor_ops.CHECKS = original
    return result


def test_doctor_passes_when_the_model_answers_and_shows_ttft(vllm) -> None:  # noqa: ANN001
    result = _serving(vllm, ["vllm-0"])
    assert result.status == "pass" and result.detail.startswith(f"model {MODEL} | TTFT")


def test_doctor_warns_while_the_model_starts_and_fails_when_it_cannot_answer(vllm) -> None:  # noqa: ANN001
    vllm.mode = "503"
    assert _serving(vllm, ["vllm-0"]).status == "warn"
    vllm.close()
    failed = _serving(vllm, ["vllm-0"])
    assert failed.status == "fail" and "kubectl logs" in failed.fix


def test_doctor_skips_serving_without_vllm_pods(vllm) -> None:  # noqa: ANN001
    assert _serving(vllm, []).status == "skip"
