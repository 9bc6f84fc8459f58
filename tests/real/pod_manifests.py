"""Helpers of the issue-10 real checks: the SYNTHESIZED manifests (the standalone synth's dist output,
run as a subprocess exactly like ``make manifests-offline``), and how a container's securityContext
maps onto ``setpriv`` (what containerd's runc spec gives a container)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-west-2"


def synthesize(outdir: Path, *extra: str) -> dict[str, list[dict[str, Any]]]:
    """Run ``python -m k8s_charts.synth --offline`` into ``outdir``; return file stem -> objects."""
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    done = subprocess.run([sys.executable, "-m", "k8s_charts.synth", "--offline", "--outdir", str(outdir),
                           "--model-bucket", "example-model-bucket", "--region", REGION, *extra],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return {p.name.removesuffix(".k8s.yaml"): [o for o in yaml.safe_load_all(p.read_text()) if o]
            for p in sorted(outdir.glob("*.k8s.yaml"))}


def pod_specs(manifests: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [o["spec"]["template"]["spec"] for objs in manifests.values() for o in objs
            if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


@dataclass(frozen=True)
class Identity:
    """The process identity and capabilities a container gets from its securityContext."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    caps: tuple[str, ...]  # lower-case names without CAP_, as setpriv spells them
    no_new_privs: bool

    def setpriv(self) -> list[str]:
        caps = "".join(f",+{c}" for c in self.caps)
        groups = ["--groups=" + ",".join(map(str, self.groups))] if self.groups else ["--clear-groups"]
        # Inheritable and ambient sets are empty in containerd's default spec; the bounding set is
        # the capability list. As UID 0 exec gives permitted = effective = bounding; as another UID, nothing.
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *groups, "--inh-caps=-all",
                f"--bounding-set=-all{caps}", *(["--no-new-privs"] if self.no_new_privs else [])]


def identity(pod: dict[str, Any], container: dict[str, Any]) -> Identity:
    psc, csc = pod.get("securityContext", {}), container.get("securityContext", {})
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    assert uid is not None and gid is not None, f"{container['name']}: runAsUser/runAsGroup must be explicit"
    # The runtime adds fsGroup and supplementalGroups as supplementary groups of every container.
    groups = tuple(sorted({*psc.get("supplementalGroups", []), *([psc["fsGroup"]] if "fsGroup" in psc else [])}))
    capabilities = csc.get("capabilities", {})
    assert capabilities.get("drop") == ["ALL"], f"{container['name']}: the test models drop: [ALL] only"
    caps = tuple(c.lower() for c in capabilities.get("add", []))
    return Identity(uid=uid, gid=gid, groups=groups, caps=caps,
                    no_new_privs=csc.get("allowPrivilegeEscalation") is False)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
