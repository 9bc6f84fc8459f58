"""A Bottlerocket builder host, modelled from Bottlerocket's sources, around REAL components.

What is real: containerd 2.1 and its ``ctr`` (Debian's build of the major version Bottlerocket's
aws-k8s-1.33+ variants ship), the CNCF distribution registry (Debian ``docker-registry``) with TLS and
htpasswd auth, skopeo pushing a two-platform OCI image the test builds, the kernel's mount table and
namespaces. What is a double, and where its behaviour comes from:

- the CONTROL container (SSM agent): the document's command text runs under ``sh`` with only
  ``apiclient`` and ``sleep`` on PATH (the agent's aws:runShellScript runs the commands with sh);
- ``apiclient exec admin CMD...`` (bottlerocket-os/bottlerocket-core-kit
  ``sources/api/apiclient/src/exec.rs``: runs CMD in the named host container, arguments passed
  through, CMD's exit code returned; fails while the container is not running): runs CMD with the
  ADMIN image's tools only; the first ``admin_failures`` calls fail as a starting container does;
- the ADMIN container (bottlerocket-os/bottlerocket-admin-container ``Dockerfile``: Amazon Linux 2
  plus jq, util-linux, procps, openssl...; ``sheltie``): PATH holds only the tools in ADMIN_TOOLS;
- ``sheltie CMD...`` (admin container ``sheltie``: ``exec nsenter -t 1 -a -- "$@"``): runs CMD in the
  HOST root with the admin container's PATH, exit 127 when CMD does not exist there, as nsenter;
- the HOST root holds only HOST_FILES: no shell, no coreutils;
- the kubelet ECR credential provider: ``hostmodel/ecr-credential-provider.c``, derived from
  kubernetes/cloud-provider-aws ``cmd/ecr-credential-provider/{plugin,main}.go`` (cited there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from coldstart.emulator import ACCOUNT
from tests.real.conftest import CONTAINERD_DIR

HERE = Path(__file__).resolve().parent / "hostmodel"
# the account and region of the moto world, so the state machine resolves the very image pushed here
ECR_REGISTRY = f"{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com"
DATA_VOLUME_ID = "vol-0123456789abcdef0"

# The admin image's tools the script may use (bottlerocket-admin-container Dockerfile: amazonlinux:2
# base = bash, coreutils; `yum install jq ... util-linux ...`). Anything else fails with 127.
ADMIN_TOOLS = ("bash", "jq", "cat", "tail", "tr", "true", "sleep", "mktemp", "rm")
# The aws-k8s variant host's files the model provides, each with the Bottlerocket source showing it.
HOST_FILES = {
    "usr/bin/ctr": "bottlerocket-core-kit packages/containerd/containerd.spec (%{_cross_bindir}/ctr)",
    "usr/libexec/kubernetes/kubelet/plugins/ecr-credential-provider":
        "bottlerocket-core-kit packages/ecr-credential-provider/ecr-credential-provider.spec (%{_cross_libexecdir}/kubernetes/kubelet/plugins)",
    "lib64/ld-linux-x86-64.so.2": "bottlerocket-core-kit packages/glibc/glibc.spec (the host's C library; ctr links it)",
    "lib/x86_64-linux-gnu/libc.so.6": "bottlerocket-core-kit packages/glibc/glibc.spec",
    "etc/ssl/certs/ca-certificates.crt": "the host's CA bundle (Go's default root paths); here the test registry's CA",
    "etc/hosts": "the ECR registry name resolved to the test registry on 127.0.0.1",
}


@dataclass
class Scenario:
    token: str = "ecr-token-Zm9vYmFy"  # what ECR's GetAuthorizationToken would hand the provider
    registry_password: str | None = None  # None: the registry accepts the token
    data_serial: str = DATA_VOLUME_ID.replace("-", "")  # the NVMe serial of containerd's root device
    registry_up: bool = True
    admin_failures: int = 0
    push_platforms: tuple[str, ...] = ("amd64", "arm64")
    delete_layer: str | None = None  # arch whose layer blob is removed from the registry after the push
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class HostRun:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    def read(self, name: str) -> str:
        path = self.out / name
        return path.read_text() if path.exists() else ""


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def _certificate(work: Path) -> tuple[Path, Path]:
    key, cert = work / "registry" / "tls.key", work / "registry" / "tls.crt"
    key.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={ECR_REGISTRY}",
                    "-addext", f"subjectAltName=DNS:{ECR_REGISTRY},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


def _host_root(work: Path, cert: Path, token: str) -> Path:
    root = work / "hostroot"
    ctr = CONTAINERD_DIR / "ctr"
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy2(ctr, root / "usr/bin/ctr")
    provider = root / "usr/libexec/kubernetes/kubelet/plugins/ecr-credential-provider"
    provider.parent.mkdir(parents=True)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(provider), str(HERE / "ecr-credential-provider.c")], check=True, capture_output=True)
    for lib in ("lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"):
        (root / lib).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path("/") / lib, root / lib, follow_symlinks=True)
    _write(root / "etc/ssl/certs/ca-certificates.crt", cert.read_text())
    _write(root / "etc/hosts", f"127.0.0.1 localhost {ECR_REGISTRY}\n")
    _write(root / "etc/coldstart-test/ecr-token", token + "\n", 0o600)
    (root / "run/containerd").mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    return root


def _doubles(work: Path, host_root: Path, admin_failures: int) -> None:
    admin_bin, control_bin = work / "admin-bin", work / "control-bin"
    admin_bin.mkdir()
    control_bin.mkdir()
    for tool in ADMIN_TOOLS:
        (admin_bin / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    # sheltie: the admin container's script, with nsenter into pid 1 replaced by chroot into the host root.
    _write(admin_bin / "sheltie", f"""#!{shutil.which('bash')}
if [[ $EUID -ne 0 ]]; then echo "sheltie must be run as root, you can use 'sudo sheltie' in the admin container"; exit 1; fi
if [[ ${{#@}} -ne 0 ]]; then
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin exec {shutil.which('chroot')} {host_root} "$@"
fi
echo "sheltie without arguments (an interactive host shell) is not modelled" >&2; exit 2
""", 0o755)
    counter = work / "admin-exec-calls"
    _write(control_bin / "apiclient", f"""#!{shutil.which('bash')}
# apiclient exec <container> CMD...: runs CMD in that container; fails while it is still starting.
if [ "$1" != exec ]; then echo "apiclient double: only 'exec' is modelled" >&2; exit 2; fi
if [ "$2" != admin ]; then echo "Failed to exec: no such container '$2'" >&2; exit 1; fi
shift 2
calls=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo "$calls" > {counter}
if [ "$calls" -le {admin_failures} ]; then echo "Failed to exec: task admin not running" >&2; exit 1; fi
exec {shutil.which('env')} -i PATH={admin_bin} HOME=/root "$@"
""", 0o755)
    (control_bin / "sleep").symlink_to(shutil.which("sleep"))  # type: ignore[arg-type]


def run(work: Path, document_text: str, scenario: Scenario, layouts: dict[str, Path]) -> HostRun:
    """Run ``document_text`` (the rendered SSM command text) on the modelled host; ``layouts``: repo:tag -> OCI dir."""
    key, cert = _certificate(work)
    host_root = _host_root(work, cert, scenario.token)
    _doubles(work, host_root, scenario.admin_failures)
    htpasswd = subprocess.run(["htpasswd", "-Bbn", "AWS", scenario.registry_password or scenario.token], check=True,
                              capture_output=True, text=True).stdout
    _write(work / "registry" / "htpasswd", htpasswd)
    _write(work / "registry" / "config.yml", json.dumps({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(work / "registry" / "data")}, "delete": {"enabled": True}},
        "http": {"addr": "127.0.0.1:443", "tls": {"certificate": str(cert), "key": str(key)}},
        "auth": {"htpasswd": {"realm": "coldstart-test", "path": str(work / "registry" / "htpasswd")}},
    }))
    disabled = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images",
                "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.sandbox.controller.v1.shim"]
    _write(work / "containerd.toml", "\n".join([
        "version = 3", 'root = "/var/lib/containerd"', 'state = "/run/containerd-state"',
        "disabled_plugins = " + json.dumps(disabled), "[grpc]", '  address = "/run/containerd/containerd.sock"', ""]))
    _write(work / "document.sh", document_text)
    delete = ""
    if scenario.delete_layer:
        delete = scenario.extra["layer_digest"].split(":", 1)[1]
    env_lines = {
        "CONTAINERD": str(CONTAINERD_DIR / "containerd"), "CTR": str(CONTAINERD_DIR / "ctr"), "DATA_SERIAL": scenario.data_serial,
        "REGISTRY_UP": "1" if scenario.registry_up else "0", "TOKEN": scenario.registry_password or scenario.token,
        "PUSH_LAYOUTS": " ".join(f"{path}={repo}" for repo, path in layouts.items()), "DELETE_BLOBS": delete,
    }
    _write(work / "scenario.env", "".join(f"{k}={json.dumps(v)}\n" for k, v in env_lines.items()))
    proc = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                           "bash", str(HERE / "init.sh"), str(work)],
                          capture_output=True, text=True, timeout=240, check=False, env={**os.environ, "PATH": os.environ["PATH"]})
    out = work / "out"
    if proc.returncode != 0:
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(out.glob("*.log")) if p.exists())
        raise AssertionError(f"host model failed to run (exit {proc.returncode}): {proc.stderr[-2000:]}\n{logs}")
    return HostRun(int((out / "rc").read_text()), (out / "stdout").read_text(), (out / "stderr").read_text(), out)
