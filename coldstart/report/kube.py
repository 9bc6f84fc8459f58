"""Reading the Kubernetes side of a cold start: pod, events and Karpenter NodeClaims as JSON.

The inputs are exactly what ``kubectl get ... -o json`` prints, so a saved bundle and a live
cluster go through the same code. Message formats are the kubelet's and Karpenter's own:

- kubelet ``Pulled``: ``Container image "<img>" already present on machine`` (newer kubelets add
  `` and can be accessed by the pod``) or ``Successfully pulled image "<img>" in <go-duration>
  (<go-duration> including waiting). Image size: <n> bytes.`` (kubernetes
  pkg/kubelet/images/image_manager.go; older kubelets stop after the first duration).
- kubelet ``Killing``: ``Container <name> failed startup probe, will be restarted``;
  ``Unhealthy``: ``Startup probe failed: ...``.
- Karpenter ``Nominated`` (on the pod): ``Pod should schedule on: nodeclaim/<name>[, node/<name>]``
  (kubernetes-sigs/karpenter, the provisioner's NominatePodEvent).
- NodeClaim ``status.conditions`` (Launched, Registered, Initialized) carry ``lastTransitionTime``
  (karpenter.sh_nodeclaims.yaml, v1.14.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coldstart.report.errors import ReportError

# --- time -----------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?(?P<tz>Z|[+-]\d{2}:\d{2})?"
)


def parse_time(value: Any, *, field: str = "timestamp") -> datetime | None:
    """An RFC 3339 timestamp (seconds or nanoseconds, as Kubernetes writes them) as aware UTC."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ReportError(f"{field}: invalid value {value!r}; expected an RFC 3339 timestamp such as 2025-06-12T10:31:52Z")
    m = _RFC3339.fullmatch(value.strip())
    if not m:
        raise ReportError(f"{field}: invalid value {value!r}; expected an RFC 3339 timestamp such as 2025-06-12T10:31:52Z")
    frac = (m["frac"] or "")[:7]  # datetime keeps microseconds; Kubernetes may give nanoseconds
    tz = m["tz"] or "Z"
    text = f"{m['date']}T{m['time']}{frac}{'+00:00' if tz == 'Z' else tz}"
    return datetime.fromisoformat(text).astimezone(UTC)


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go ``time.Duration`` string such as ``1m2.345s``, ``512ms`` or ``0s``."""
    text = text.strip()
    if not text:
        return None
    pos, total = 0, 0.0
    for m in _GO_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m[1]) * _GO_UNITS[m[2]]
        pos = m.end()
    return total if pos == len(text) else None


# --- objects ----------------------------------------------------------------------------------


def items_of(doc: Any, *, what: str) -> list[dict[str, Any]]:
    """The objects of a ``kubectl get -o json`` answer: a List's items or one object."""
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise ReportError(f"{what}: invalid JSON document; expected the output of `kubectl get ... -o json` (an object)")
    if "items" in doc:
        items = doc["items"] or []
        if not isinstance(items, list):
            raise ReportError(f"{what}: 'items' is {type(items).__name__}; expected a list")
        return [i for i in items if isinstance(i, dict)]
    if "kind" in doc:
        return [doc]
    raise ReportError(f"{what}: neither a List (with 'items') nor an object (with 'kind'); was it saved with -o json?")


def condition_time(obj: dict[str, Any], cond_type: str) -> datetime | None:
    """lastTransitionTime of a condition that is True, else None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"), field=f"status.conditions[{cond_type}].lastTransitionTime")
    return None


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str
    count: int
    first: datetime | None
    last: datetime | None
    field_path: str
    component: str

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Event:
        first = parse_time(raw.get("firstTimestamp") or raw.get("deprecatedFirstTimestamp") or raw.get("eventTime"),
                           field="event.firstTimestamp")
        series = raw.get("series") or {}
        last = parse_time(series.get("lastObservedTime") or raw.get("lastTimestamp")
                          or raw.get("deprecatedLastTimestamp"), field="event.lastTimestamp") or first
        source = raw.get("source") or {}
        count = raw.get("count") or series.get("count") or raw.get("deprecatedCount") or 1
        return cls(
            reason=str(raw.get("reason") or ""),
            message=str(raw.get("message") or raw.get("note") or ""),
            type=str(raw.get("type") or ""),
            count=int(count),
            first=first,
            last=last,
            field_path=str((raw.get("involvedObject") or raw.get("regarding") or {}).get("fieldPath") or ""),
            component=str(source.get("component") or raw.get("reportingController") or raw.get("reportingComponent") or ""),
        )


def events_for(events: list[dict[str, Any]], *, kind: str, name: str, uid: str | None) -> list[Event]:
    """Events about one object, oldest first. A matching UID is required when both sides have one,
    so events of an earlier pod with the same name are not mixed in."""
    out = []
    for raw in events:
        obj = raw.get("involvedObject") or raw.get("regarding") or {}
        if obj.get("kind") != kind or obj.get("name") != name:
            continue
        if uid and obj.get("uid") and obj["uid"] != uid:
            continue
        out.append(Event.from_json(raw))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(out, key=lambda e: e.first or far)


def container_field_path(container: str) -> str:
    return f"spec.containers{{{container}}}"


# --- kubelet messages ---------------------------------------------------------------------------

_PRESENT = re.compile(r'Container image "(?P<image>[^"]+)" already present on machine')
_PULLED = re.compile(
    r'Successfully pulled image "(?P<image>[^"]+)" in (?P<pull>[0-9.hmsuµn]+)'
    r"(?: \((?P<total>[0-9.hmsuµn]+) including waiting\))?(?:\. Image size: (?P<size>\d+) bytes)?"
)


@dataclass(frozen=True)
class ImagePull:
    image: str
    present: bool
    seconds: float | None  # wall time of the pull (including waiting when the kubelet says it)
    size_bytes: int | None


def parse_pulled(message: str) -> ImagePull | None:
    if m := _PRESENT.search(message):
        return ImagePull(image=m["image"], present=True, seconds=0.0, size_bytes=None)
    if m := _PULLED.search(message):
        seconds = parse_go_duration(m["total"] or m["pull"])
        return ImagePull(image=m["image"], present=False, seconds=seconds,
                         size_bytes=int(m["size"]) if m["size"] else None)
    return None


_NOMINATED = re.compile(r"nodeclaim/(?P<name>[a-z0-9.-]+)")


def nominated_nodeclaim(events: list[Event]) -> str | None:
    for ev in events:
        if ev.reason == "Nominated" and (m := _NOMINATED.search(ev.message)):
            return m["name"]
    return None


def is_startup_probe_kill(ev: Event) -> bool:
    return ev.reason == "Killing" and "failed startup probe" in ev.message


def is_startup_probe_failure(ev: Event) -> bool:
    return ev.reason == "Unhealthy" and ev.message.startswith("Startup probe failed")
