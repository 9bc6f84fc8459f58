"""Collecting the evidence from a live cluster with ``kubectl`` (read-only calls only).

The commands are the ones a bundle documents (see inputs.py), so ``save_bundle`` of what this
collects replays offline exactly. ``runner`` is injectable: tests pass a fake one; the default runs
kubectl with a timeout and no shell.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coldstart.report.errors import ReportError
from coldstart.report.inputs import ColdStartInputs, pick_container
from coldstart.report.kube import items_of

KUBECTL_TIMEOUT_S = 60


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], RunResult]


def subprocess_runner(args: Sequence[str]) -> RunResult:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise ReportError(f"{args[0]}: not found; install kubectl (and point it at the cluster) "
                          "or report offline from a saved bundle") from None
    except subprocess.TimeoutExpired:
        raise ReportError(f"`{' '.join(args)}` did not answer within {KUBECTL_TIMEOUT_S} s; check the cluster connection") from None
    return RunResult(done.returncode, done.stdout, done.stderr)


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "").strip()


class _Kubectl:
    def __init__(self, kubectl: str, runner: Runner, context: str | None):
        self.base = [kubectl] + (["--context", context] if context else [])
        self.runner = runner

    def run(self, *args: str, allow_fail: bool = False) -> str | None:
        cmd = [*self.base, *args]
        res = self.runner(cmd)
        if res.returncode != 0:
            if allow_fail:
                return None
            raise ReportError(f"`{' '.join(cmd)}` failed (exit {res.returncode}): {_first_line(res.stderr) or 'no message'}")
        return res.stdout

    def json(self, *args: str, allow_fail: bool = False) -> Any:
        out = self.run(*args, "-o", "json", allow_fail=allow_fail)
        if out is None:
            return None
        try:
            return json.loads(out)
        except ValueError:
            raise ReportError(f"`{' '.join([*self.base, *args])} -o json` printed something that is not JSON") from None


def collect_live(pod_name: str, namespace: str, *, container: str | None = None, kubectl: str = "kubectl",
                 context: str | None = None, runner: Runner | None = None) -> ColdStartInputs:
    """Read one pod's start from the cluster: the pod, its events, the NodeClaims, its log(s)."""
    if runner is None:
        if shutil.which(kubectl) is None:
            raise ReportError(f"{kubectl}: not found on PATH; install kubectl and configure access to the cluster "
                              "(aws eks update-kubeconfig --name <cluster>), or report offline from a saved bundle")
        runner = subprocess_runner
    k = _Kubectl(kubectl, runner, context)
    pod = k.json("get", "pod", pod_name, "-n", namespace)
    if not isinstance(pod, dict) or pod.get("kind") != "Pod":
        raise ReportError(f"`kubectl get pod {pod_name} -n {namespace}` did not return a Pod")
    name = pick_container(pod, container)
    notes: dict[str, str] = {"pod": f"kubectl get pod {pod_name} -n {namespace}"}
    events_doc = k.json("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={pod_name}")
    events = items_of(events_doc, what="kubectl get events")
    notes["events"] = f"kubectl get events -n {namespace} --field-selector involvedObject.name={pod_name}"
    # NodeClaims are cluster-scoped; without Karpenter the resource type does not exist: not an error.
    nodeclaims_doc = k.json("get", "nodeclaims", allow_fail=True)
    nodeclaims = items_of(nodeclaims_doc, what="kubectl get nodeclaims") if nodeclaims_doc else []
    if nodeclaims_doc is not None:
        notes["nodeclaims"] = "kubectl get nodeclaims"
    log = k.run("logs", pod_name, "-n", namespace, "-c", name, "--timestamps", allow_fail=True)
    if log is not None:
        notes["log"] = f"kubectl logs {pod_name} -n {namespace} -c {name} --timestamps"
    restarted = any(c.get("name") == name and (c.get("restartCount") or 0) > 0
                    for c in (pod.get("status") or {}).get("containerStatuses") or [])
    previous = k.run("logs", pod_name, "-n", namespace, "-c", name, "--timestamps", "--previous",
                     allow_fail=True) if restarted else None
    if previous is not None:
        notes["previous_log"] = f"kubectl logs {pod_name} -n {namespace} -c {name} --timestamps --previous"
    nodeclasses_doc = k.json("get", "ec2nodeclasses", allow_fail=True)  # for the data volume's hydration
    nodeclasses = items_of(nodeclasses_doc, what="kubectl get ec2nodeclasses") if nodeclasses_doc else []
    if nodeclasses_doc is not None:
        notes["nodeclasses"] = "kubectl get ec2nodeclasses"
    cache_logs = []
    for init in (pod.get("spec") or {}).get("initContainers") or []:  # compile-cache restore/publish (JSON lines)
        if "compile-cache" in str(init.get("name", "")):
            text = k.run("logs", pod_name, "-n", namespace, "-c", init["name"], "--timestamps", allow_fail=True)
            if text is not None:
                cache_logs.append(text)
                notes.setdefault("compile_cache_log", f"kubectl logs {pod_name} -n {namespace} -c {init['name']} --timestamps")
    return ColdStartInputs(pod=pod, container=name, events=events, nodeclaims=nodeclaims, log=log, nodeclasses=nodeclasses,
                           previous_log=previous, compile_cache_log="\n".join(cache_logs) if cache_logs else None,
                           sources=notes)
