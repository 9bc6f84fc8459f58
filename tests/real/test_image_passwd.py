"""Every container's runAsUser against the passwd facts of its image (tests/real/facts/), and the
consequence run for real: Python's getpass.getuser() (torch calls it for its Inductor cache dir) as
that UID, with the image's passwd in place of the host's and the container's environment.

The facts are recorded for one image tag; a test fails when the charts deploy another tag without
them being re-recorded.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from settings.config import load_default_config
from tests.real.conftest import require_binary, require_root
from tests.real.pod_manifests import env_of, identity, pod_specs, synthesize

FACTS = json.loads((Path(__file__).parent / "facts" / "vllm-openai-passwd.json").read_text())


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    return synthesize(tmp_path_factory.mktemp("dist"))


def _image_facts(image: str) -> dict[str, Any]:
    repo_tag = image.split("/", 1)[1] if image.startswith("docker.io/") else image.split("/", 1)[-1]
    name, _, tag = repo_tag.partition(":")
    assert "@" not in image or FACTS["digest"] and image.endswith(FACTS["digest"]), (
        f"{image} is pinned to a digest the facts were not recorded for: re-record tests/real/facts/")
    assert (name, tag) == (FACTS["image"], FACTS["tag"]), (
        f"the charts deploy {name}:{tag}, the passwd facts are for {FACTS['image']}:{FACTS['tag']}: re-read the "
        "image's Dockerfile at that tag and re-record tests/real/facts/vllm-openai-passwd.json")
    return FACTS


def test_the_facts_match_the_configured_image() -> None:
    cfg = load_default_config()
    assert (cfg.vllmRepository, cfg.vllmImageTag) == (FACTS["image"], FACTS["tag"]), "re-record the passwd facts"


def test_every_container_runs_as_a_user_its_image_knows_or_names_itself(manifests) -> None:
    for pod in pod_specs(manifests):
        for container in pod.get("initContainers", []) + pod["containers"]:
            facts = _image_facts(container["image"])
            uid = identity(pod, container).uid
            known = {int(line.split(":")[2]) for line in facts["passwd"]}
            if uid in known:
                continue
            assert uid in facts["absent_uids"] or uid not in known
            env = env_of(container)
            # getpass.getuser() reads LOGNAME, USER, LNAME, USERNAME before pwd.getpwuid(); HOME must be writable
            assert env.get("USER") and env.get("LOGNAME"), f"{container['name']} runs as UID {uid}, unknown to the image"
            assert any(env.get("HOME", "").startswith(m["mountPath"]) for m in container.get("volumeMounts", [])), \
                f"{container['name']}: HOME must be a mounted volume for UID {uid}"


def _getuser_as(uid: int, gid: int, env: dict[str, str], passwd: Path) -> subprocess.CompletedProcess[str]:
    """getpass.getuser() as uid:gid with only ``env``, the image's passwd bind-mounted over /etc/passwd."""
    # the system interpreter: the test's own (a venv under /root) may not be executable by another UID
    python = require_binary("python3", "/usr/bin/python3")
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    inner = (f"mount --bind {shlex.quote(str(passwd))} /etc/passwd && exec setpriv --reuid={uid} --regid={gid} "
             f"--clear-groups env -i {env_args} {shlex.quote(python)} -S -c "
             "'import getpass; print(getpass.getuser())'")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                          capture_output=True, text=True, timeout=60)


def test_getuser_works_as_the_vllm_uid_only_because_of_the_environment(manifests, tmp_path: Path) -> None:
    require_root()
    require_binary("setpriv")
    require_binary("unshare")
    passwd = tmp_path / "passwd"
    passwd.write_text("\n".join(FACTS["passwd"]) + "\n")
    os.chmod(passwd, 0o644)
    os.chmod(tmp_path, 0o755)
    [pod] = pod_specs(manifests)
    [vllm] = pod["containers"]
    who = identity(pod, vllm)
    env = {k: v for k, v in env_of(vllm).items() if k in ("USER", "LOGNAME", "HOME")}
    # With the manifest's environment: the user is named, no passwd lookup
    done = _getuser_as(who.uid, who.gid, env, passwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == env["USER"]
    # Without it (the defect): pwd.getpwuid(1000) has no entry in the image -> KeyError at import
    bare = _getuser_as(who.uid, who.gid, {"HOME": env["HOME"]}, passwd)
    assert bare.returncode != 0
    assert "uid not found" in bare.stderr
