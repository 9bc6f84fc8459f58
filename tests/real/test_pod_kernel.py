"""Every init container of the synthesized vLLM manifests, run by the kernel with exactly its declared
identity and capabilities, on the directory as kubelet leaves it; then the vLLM user writes there.

What kubelet does with the ``vllm-cache`` volume (kubernetes/kubernetes, release-1.33):
- ``pkg/volume/hostpath/host_path.go``: type DirectoryOrCreate -> ``os.MkdirAll(path, 0755)`` as
  kubelet (root, umask 022): the directory is root:root 0755 on first start; on a restart it is
  whatever the last run left.
- a hostPath volume does not support ownership management (``GetAttributes``: ``Managed: false``),
  so fsGroup is NOT applied to it: nothing but the init container changes its owner.

The directory is bind-mounted at the container's mountPath in a private mount namespace, so the
command runs unmodified, as it appears in the manifest.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.real.conftest import require_binary, require_root
from tests.real.pod_manifests import Identity, identity, pod_specs, synthesize


@pytest.fixture(scope="module")
def vllm_pod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    manifests = synthesize(tmp_path_factory.mktemp("dist"))
    [pod] = pod_specs(manifests)
    return pod


def kubelet_made_dir(root: Path) -> Path:
    """host_path.go DirectoryOrCreate: MkdirAll(path, 0755) by root."""
    host = root / "local" / "vllm-cache"
    host.parent.mkdir(parents=True)
    os.mkdir(host, 0o755)
    os.chown(host, 0, 0)
    os.chmod(host, 0o755)
    return host


def run_in_container(host_dir: Path, mount_path: str, who: Identity, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` as ``who``, with ``host_dir`` mounted at ``mount_path`` in a private mount namespace."""
    parent = os.path.dirname(mount_path)
    assert parent.count("/") >= 2, f"refusing to shadow a top-level directory: {parent}"
    setup = (f"mount -t tmpfs tmpfs {shlex.quote(parent)} && mkdir -p {shlex.quote(mount_path)} && "
             f"mount --bind {shlex.quote(str(host_dir))} {shlex.quote(mount_path)} && "
             f"exec {shlex.join(who.setpriv())} sh -c {shlex.quote(script)}")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", setup],
                          capture_output=True, text=True, timeout=60)


def _owner_mode(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@pytest.fixture(autouse=True)
def _real() -> None:
    require_root()
    for binary in ("setpriv", "unshare", "mount", "stat"):
        require_binary(binary)


def shell_inits(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The init containers that prepare the node's directories (``sh -c``). The others (compile-cache restore
    and publish) run Python as the vLLM user with no capability: what the kernel lets them do there is what it
    lets the vLLM container do, checked below, and the script itself is tested against S3 in tests/k8s_charts."""
    return [c for c in pod.get("initContainers", []) if c.get("command", [])[:2] == ["sh", "-c"]]


def test_the_other_init_containers_run_as_the_vllm_user_without_capabilities(vllm_pod: dict[str, Any]) -> None:
    [vllm] = vllm_pod["containers"]
    others = [c for c in vllm_pod.get("initContainers", []) if c not in shell_inits(vllm_pod)]
    assert others, "the default manifests restore the compile cache in an init container"
    for init in others:
        who = identity(vllm_pod, init)
        assert (who.uid, who.gid, who.caps) == (identity(vllm_pod, vllm).uid, identity(vllm_pod, vllm).gid, ()), init["name"]


def test_every_init_container_succeeds_on_first_start_and_restart(vllm_pod: dict[str, Any], tmp_path: Path) -> None:
    inits = shell_inits(vllm_pod)
    assert inits, "the default manifests (compileCacheOnNode) hand the cache directory over in an init container"
    [vllm] = vllm_pod["containers"]
    vllm_id = identity(vllm_pod, vllm)
    for init in inits:
        who = identity(vllm_pod, init)
        [mount] = init["volumeMounts"]
        host = kubelet_made_dir(tmp_path / init["name"])
        assert _owner_mode(host) == (0, 0, 0o755)
        script = init["command"][-1]
        assert init["command"][:2] == ["sh", "-c"]
        for attempt in ("first start", "restart"):
            done = run_in_container(host, mount["mountPath"], who, script)
            assert done.returncode == 0, f"{init['name']} failed on {attempt} with caps {who.caps}: {done.stderr}"
            # Then the directory belongs to the vLLM container's user, private to it
            assert _owner_mode(host) == (vllm_id.uid, vllm_id.gid, 0o750), attempt

        # And the vLLM container (its UID, no capabilities) can create its caches there
        [vllm_mount] = [m for m in vllm["volumeMounts"] if m["name"] == mount["name"]]
        d = shlex.quote(vllm_mount["mountPath"])
        done = run_in_container(host, vllm_mount["mountPath"], vllm_id,
                                f"mkdir -p {d}/torch_compile_cache {d}/torchinductor && touch {d}/triton-probe")
        assert done.returncode == 0, done.stderr
        assert (host / "torch_compile_cache").stat().st_uid == vllm_id.uid


def test_the_init_container_declares_no_capability_it_does_not_need(vllm_pod: dict[str, Any], tmp_path: Path) -> None:
    """Each declared capability is necessary: without it the command fails on the kubelet-made directory."""
    for init in shell_inits(vllm_pod):
        who = identity(vllm_pod, init)
        [mount] = init["volumeMounts"]
        for dropped in who.caps:
            fewer = Identity(who.uid, who.gid, who.groups, tuple(c for c in who.caps if c != dropped), who.no_new_privs)
            host = kubelet_made_dir(tmp_path / f"{init['name']}-{dropped}")
            done = run_in_container(host, mount["mountPath"], fewer, init["command"][-1])
            assert done.returncode != 0, f"{init['name']} succeeded without {dropped}: do not declare it"


def test_the_old_command_fails_under_cap_chown_alone(vllm_pod: dict[str, Any], tmp_path: Path) -> None:
    """The defect this layer exists for: chown then chmod as root with only CAP_CHOWN. Once the
    directory belongs to 1000, chmod needs the owner or CAP_FOWNER: EPERM (Init:CrashLoopBackOff)."""
    [init] = shell_inits(vllm_pod)
    who = identity(vllm_pod, init)
    assert who.caps == ("chown",)
    [mount] = init["volumeMounts"]
    host = kubelet_made_dir(tmp_path / "old")
    old = f"chown 1000:1000 {mount['mountPath']} && chmod 0750 {mount['mountPath']}"
    done = run_in_container(host, mount["mountPath"], who, old)
    assert done.returncode != 0
    assert "Operation not permitted" in done.stderr
