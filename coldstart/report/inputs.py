"""The evidence a report is built from, loaded from a saved bundle (offline) or written to one.

A bundle is a directory (or a list of files) holding what these commands print::

    kubectl get pod <pod> -n <ns> -o json              > pod.json        (required; pods.json also works)
    kubectl get events -n <ns> -o json                 > events.json
    kubectl get nodeclaims -o json                     > nodeclaims.json
    kubectl logs <pod> -n <ns> -c vllm --timestamps    > vllm.log
    kubectl logs <pod> -n <ns> -c vllm --timestamps --previous > vllm.previous.log   (after a restart)
    kubectl get ec2nodeclasses -o json                 > ec2nodeclasses.json   (optional: volume hydration)
    aws ec2 describe-fast-snapshot-restores --output json > fsr.json       (optional: volume hydration)
    kubectl logs <pod> -n <ns> -c <cache container>    > compile-cache.log     (optional: cache restore/publish)

JSON files are recognised by their content (the ``kind`` of the objects), logs by the ``.log``
suffix; a log whose name contains "previous" is the previous container's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldstart.report.errors import ReportError
from coldstart.report.kube import items_of

DEFAULT_CONTAINER = "vllm"
COMPILE_CACHE_LOG_PREFIX = "compile-cache"  # compile-cache*.log: the cache sync container's JSON-line events  # the container name the project's Deployment uses

BUNDLE_FILES = {
    "pod": "pod.json",
    "events": "events.json",
    "nodeclaims": "nodeclaims.json",
    "log": "vllm.log",
    "previous_log": "vllm.previous.log",
    "nodeclasses": "ec2nodeclasses.json",  # optional: kubectl get ec2nodeclasses -o json
    "fsr": "fsr.json",  # optional: aws ec2 describe-fast-snapshot-restores --output json
}


@dataclass
class ColdStartInputs:
    """One pod's start: its JSON, the namespace's events, the NodeClaims and the container log."""

    pod: dict[str, Any]
    container: str
    events: list[dict[str, Any]] = field(default_factory=list)
    nodeclaims: list[dict[str, Any]] = field(default_factory=list)
    log: str | None = None
    previous_log: str | None = None
    nodeclasses: list[dict[str, Any]] = field(default_factory=list)
    fsr: list[dict[str, Any]] | None = None  # FastSnapshotRestores; None = not in the evidence
    compile_cache_log: str | None = None  # the compile-cache sync container's log (one JSON event a line)
    sources: dict[str, str] = field(default_factory=dict)  # what each piece came from, for the notes

    @property
    def pod_name(self) -> str:
        return str(self.pod.get("metadata", {}).get("name", "?"))

    @property
    def namespace(self) -> str:
        return str(self.pod.get("metadata", {}).get("namespace", "default"))


def _kind_of(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    kind = doc.get("kind")
    if kind == "List" or "items" in doc:
        kinds = {i.get("kind") for i in doc.get("items") or [] if isinstance(i, dict)}
        if len(kinds) == 1:
            return kinds.pop()
        kind = kind if kind != "List" else None
        if kind and kind.endswith("List"):
            return kind[: -len("List")]
        return None
    return kind


def _classify(path: Path) -> tuple[str, Any]:
    if path.suffix == ".log" or path.suffix == ".txt":
        role = "previous_log" if "previous" in path.name else "log"
        if path.name.startswith(COMPILE_CACHE_LOG_PREFIX):
            role = "compile_cache_log"
        return role, path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc}); save it with `kubectl get ... -o json`") from None
    if isinstance(doc, dict) and "FastSnapshotRestores" in doc:
        return "fsr", doc
    kind = _kind_of(doc)
    if kind is None:  # an empty List: fall back on the file name
        for role, name in BUNDLE_FILES.items():
            if path.name.startswith(Path(name).stem):
                return role, doc
        if path.name.startswith("pods"):
            return "pod", doc
        raise ReportError(f"{path}: cannot tell what this JSON holds (no 'kind'); name it pod.json, events.json or nodeclaims.json")
    known = {"Pod": "pod", "Event": "events", "NodeClaim": "nodeclaims", "EC2NodeClass": "nodeclasses"}.get(kind)
    if known is None:
        raise ReportError(f"{path}: holds kind {kind!r}; the report reads Pod, Event and NodeClaim JSON")
    return known, doc


def _pick_pod(pods: list[dict[str, Any]], pod_name: str | None, where: str) -> dict[str, Any]:
    names = [p.get("metadata", {}).get("name") for p in pods]
    if pod_name is not None:
        for pod in pods:
            if pod.get("metadata", {}).get("name") == pod_name:
                return pod
        raise ReportError(f"pod {pod_name!r} is not in {where}; it holds: {', '.join(map(str, names)) or 'no pods'}")
    if len(pods) == 1:
        return pods[0]
    if not pods:
        raise ReportError(f"{where}: no pod JSON found; save it with `kubectl get pod <name> -n <namespace> -o json > pod.json`")
    raise ReportError(f"{where}: holds {len(pods)} pods ({', '.join(map(str, names))}); name the one to report on")


def pick_container(pod: dict[str, Any], container: str | None) -> str:
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if container is not None:
        if container not in names:
            raise ReportError(f"container {container!r} is not in pod {pod.get('metadata', {}).get('name')!r}; "
                              f"its containers: {', '.join(map(str, names))}")
        return container
    if len(names) == 1:
        return str(names[0])
    if DEFAULT_CONTAINER in names:
        return DEFAULT_CONTAINER
    raise ReportError(f"pod has containers {', '.join(map(str, names))}; name the vLLM one")


def load_bundle(source: str | Path | Iterable[str | Path], *, pod_name: str | None = None,
                container: str | None = None) -> ColdStartInputs:
    """Load saved ``kubectl`` output: a bundle directory or the files themselves."""
    if isinstance(source, (str, Path)):
        root = Path(source)
        if not root.exists():
            raise ReportError(f"{root}: no such file or directory; give a bundle directory or its files")
        paths = sorted(p for p in root.iterdir() if p.suffix in (".json", ".log", ".txt")) if root.is_dir() else [root]
        where = str(root)
    else:
        paths = [Path(p) for p in source]
        where = ", ".join(map(str, paths)) or "no files"
        for p in paths:
            if not p.is_file():
                raise ReportError(f"{p}: no such file")
    found: dict[str, list[tuple[Path, Any]]] = {}
    for path in paths:
        role, content = _classify(path)
        found.setdefault(role, []).append((path, content))
    pods = [item for path, doc in found.get("pod", []) for item in items_of(doc, what=str(path))]
    pod = _pick_pod(pods, pod_name, where)
    sources: dict[str, str] = {"pod": ", ".join(str(p) for p, _ in found.get("pod", []))}
    events = [e for path, doc in found.get("events", []) for e in items_of(doc, what=str(path))]
    nodeclaims = [n for path, doc in found.get("nodeclaims", []) for n in items_of(doc, what=str(path))]
    nodeclasses = [n for path, doc in found.get("nodeclasses", []) for n in items_of(doc, what=str(path))]
    fsr_docs = found.get("fsr", [])
    fsr = [r for _, doc in fsr_docs for r in doc.get("FastSnapshotRestores") or []] if fsr_docs else None
    for role in ("events", "nodeclaims", "log", "previous_log", "nodeclasses", "fsr", "compile_cache_log"):
        if found.get(role):
            sources[role] = ", ".join(str(p) for p, _ in found[role])
    for role in ("log", "previous_log"):
        if len(found.get(role, [])) > 1:
            raise ReportError(f"{where}: {len(found[role])} {role.replace('_', ' ')} files ({sources[role]}); keep one")
    return ColdStartInputs(
        pod=pod,
        container=pick_container(pod, container),
        events=events,
        nodeclaims=nodeclaims,
        log=found["log"][0][1] if found.get("log") else None,
        previous_log=found["previous_log"][0][1] if found.get("previous_log") else None,
        nodeclasses=nodeclasses,
        fsr=fsr,
        compile_cache_log="\n".join(text for _, text in found["compile_cache_log"]) if found.get("compile_cache_log") else None,
        sources=sources,
    )


def save_bundle(inputs: ColdStartInputs, directory: str | Path) -> list[Path]:
    """Write the evidence as a bundle that ``load_bundle`` reads back (for offline replay)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(role: str, text: str) -> None:
        path = out / BUNDLE_FILES[role]
        path.write_text(text, encoding="utf-8")
        written.append(path)

    put("pod", json.dumps(inputs.pod, indent=2))
    put("events", json.dumps({"apiVersion": "v1", "kind": "List", "items": inputs.events}, indent=2))
    put("nodeclaims", json.dumps({"apiVersion": "v1", "kind": "List", "items": inputs.nodeclaims}, indent=2))
    if inputs.log is not None:
        put("log", inputs.log)
    if inputs.previous_log is not None:
        put("previous_log", inputs.previous_log)
    if inputs.nodeclasses:
        put("nodeclasses", json.dumps({"apiVersion": "v1", "kind": "List", "items": inputs.nodeclasses}, indent=2))
    if inputs.fsr is not None:
        put("fsr", json.dumps({"FastSnapshotRestores": inputs.fsr}, indent=2))
    if inputs.compile_cache_log is not None:
        path = out / f"{COMPILE_CACHE_LOG_PREFIX}.log"
        path.write_text(inputs.compile_cache_log, encoding="utf-8")
        written.append(path)
    return written
