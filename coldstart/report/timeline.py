"""From the evidence (pod, events, NodeClaims, log) to a timeline of phases.

Rules the numbers obey:
- A phase has a number only when the evidence gives both of its ends (or its length, from a log
  line that states it). Otherwise it is ``unknown`` — never guessed, never filled from a budget.
- Phases tile the pod's life from creation to the first ``GET /v1/models`` answered 200, so the
  known phases plus the ``unattributed`` seconds equal the total.
- An attempt that never became ready ends its timeline with one phase ``in_progress`` (with a
  lower bound: the time spent in it so far) and the rest ``not_reached``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from coldstart.report.errors import ReportError
from coldstart.report.hydration import Hydration, hydration_of
from coldstart.report.inputs import ColdStartInputs
from coldstart.report.kube import (
    Event,
    condition_time,
    container_field_path,
    events_for,
    is_startup_probe_failure,
    is_startup_probe_kill,
    nominated_nodeclaim,
    parse_pulled,
    parse_time,
)
from coldstart.report.phases import BY_KEY, VLLM_PHASES
from coldstart.report.vllm_log import VllmLog, parse_vllm_log, seconds_between
from settings.probe_timing import ProbeTiming

# Differences below this are clock resolution (events and conditions have whole seconds, vLLM's
# own timestamps too), not negative time: they are clamped to zero.
CLOCK_SLACK_S = 2.0

MEASURED, UNKNOWN, IN_PROGRESS, NOT_REACHED = "measured", "unknown", "in_progress", "not_reached"


@dataclass
class Phase:
    key: str
    seconds: float | None = None
    status: str = UNKNOWN
    at_least: float | None = None  # for in_progress: time already spent in it when the evidence ends
    source: str = ""
    detail: str = ""

    @property
    def label(self) -> str:
        return BY_KEY[self.key].label


@dataclass
class Milestone:
    name: str
    at: datetime
    source: str
    exact: bool = True


@dataclass
class ProbeWindow:
    initial_delay_s: int
    period_s: int
    failure_threshold: int

    @property
    def timing(self) -> ProbeTiming:
        return ProbeTiming(self.initial_delay_s, self.period_s, self.failure_threshold)

    @property
    def window_s(self) -> int:
        """What kubelet guarantees before a startup-probe kill (``settings.probe_timing``)."""
        return self.timing.guaranteed_s


@dataclass
class Restarts:
    count: int = 0
    startup_probe_kills: int = 0
    startup_probe_failures: int = 0
    last_termination: dict[str, Any] | None = None
    previous_attempt_stopped_in: str | None = None


@dataclass
class Timeline:
    pod_name: str
    namespace: str
    container: str
    image: str | None
    node_name: str | None
    nodeclaim: str | None
    instance_type: str | None
    capacity_type: str | None
    vllm_version: str | None
    created: datetime
    ready_at: datetime | None
    ready_source: str
    outcome: str  # ready | starting | crash_loop | failed
    phases: list[Phase]
    milestones: list[Milestone] = field(default_factory=list)
    restarts: Restarts = field(default_factory=Restarts)
    startup_probe: ProbeWindow | None = None
    weights: dict[str, Any] | None = None
    compile: dict[str, Any] | None = None
    evidence_end: datetime | None = None
    hydration: Hydration | None = None
    cache_events: list[CacheEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def phase(self, key: str) -> Phase:
        for p in self.phases:
            if p.key == key:
                return p
        raise KeyError(key)

    @property
    def total_s(self) -> float | None:
        return seconds_between(self.created, self.ready_at)

    @property
    def total_at_least_s(self) -> float | None:
        """For a pod that is not ready: how long it has been starting, per the evidence."""
        return None if self.ready_at else seconds_between(self.created, self.evidence_end)

    @property
    def known_s(self) -> float:
        return sum(p.seconds for p in self.phases if p.seconds is not None)

    @property
    def unattributed_s(self) -> float | None:
        """Seconds of the total that belong to unknown phases (None when the total is unknown)."""
        total = self.total_s
        if total is None or all(p.status == MEASURED for p in self.phases):
            return None
        return max(total - self.known_s, 0.0)

    @property
    def largest(self) -> Phase | None:
        """The longest known phase of the start itself. Restarts are left out: they repeat the
        phases, and the phase to fix is the one that made the attempt too long."""
        known = [p for p in self.phases if p.seconds is not None and p.key != "restarts"]
        return max(known, key=lambda p: p.seconds or 0.0) if known else None


@dataclass
class CacheEvent:
    """One compile-cache sync run (restore before vLLM, publish after Ready), from its JSON log line."""

    event: str  # compile_cache_restore | compile_cache_publish
    result: str | None
    seconds: float | None
    end: datetime | None  # the line's kubectl --timestamps time, when saved with it
    fields: dict[str, Any]

    @property
    def start(self) -> datetime | None:
        return self.end - timedelta(seconds=self.seconds) if self.end and self.seconds is not None else None


_TS_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2}T\S+)\s+(\{.*\})\s*$")


def parse_cache_events(text: str | None) -> list[CacheEvent]:
    """The compile-cache container's one-line JSON events: ``{"event": "compile_cache_restore", "result":
    "hit", "seconds": 1.9, ...}`` (k8s_charts/runtime/compile_cache_sync.py ``log``), optionally prefixed
    by the ``kubectl logs --timestamps`` time. Other lines are ignored."""
    events: list[CacheEvent] = []
    for line in (text or "").splitlines():
        line = line.strip()
        m = _TS_PREFIX.match(line)
        stamp, body = (m.group(1), m.group(2)) if m else (None, line)
        if not body.startswith("{"):
            continue
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        if not isinstance(doc, dict) or not str(doc.get("event", "")).startswith("compile_cache_"):
            continue
        secs = doc.get("seconds")
        end = parse_time(stamp, field="compile-cache log timestamp") if stamp else None
        events.append(CacheEvent(str(doc["event"]), doc.get("result"), float(secs) if isinstance(secs, (int, float)) else None,
                                 end, doc))
    return events


@dataclass
class _VllmFacts:
    weights_start: datetime | None = None
    weights_end: datetime | None = None
    compile_s: float | None = None
    graphs_s: float | None = None
    weights_info: dict[str, Any] | None = None
    compile_info: dict[str, Any] | None = None

    def start_of(self, key: str, attempt_start: datetime | None) -> datetime | None:
        """When a vLLM phase began, if the evidence tells."""
        if key == "api_init":
            return attempt_start
        if key == "weights":
            return self.weights_start
        if self.weights_end is None:
            return None
        offset = 0.0
        for before, secs in (("cuda_graphs", self.compile_s), ("engine_rest", self.graphs_s)):
            if VLLM_PHASES.index(key) >= VLLM_PHASES.index(before):
                if secs is None:
                    return None
                offset += secs
        return self.weights_end + timedelta(seconds=offset)


# --- helpers ----------------------------------------------------------------------------------


def _less(span: float | None, *parts: float) -> float | None:
    """A measured span less the parts measured inside it (None when the span is unknown)."""
    if span is None:
        return None
    for part in parts:  # one subtraction at a time, as written before: the same floats to the last bit
        span -= part
    return span


def _clamped(seconds: float | None, what: str, notes: list[str]) -> float | None:
    if seconds is None or seconds >= 0:
        return seconds
    if seconds >= -CLOCK_SLACK_S:
        return 0.0
    notes.append(f"{what}: the evidence gives {seconds:.1f} s (its clocks disagree); reported as unknown")
    return None


def _nodeclaim_for(nodeclaims: list[dict[str, Any]], node_name: str | None, nominated: str | None) -> dict[str, Any] | None:
    for nc in nodeclaims:
        if node_name and (nc.get("status") or {}).get("nodeName") == node_name:
            return nc
    for nc in nodeclaims:
        if nominated and nc.get("metadata", {}).get("name") == nominated:
            return nc
    return None


def _probe_window(container_spec: dict[str, Any]) -> ProbeWindow | None:
    probe = container_spec.get("startupProbe")
    if not probe:
        return None
    # Kubernetes defaults: initialDelaySeconds 0, periodSeconds 10, failureThreshold 3.
    return ProbeWindow(int(probe.get("initialDelaySeconds", 0)), int(probe.get("periodSeconds", 10)),
                       int(probe.get("failureThreshold", 3)))


def _first(events: list[Event], reason: str) -> Event | None:
    return next((e for e in events if e.reason == reason), None)


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


# --- the builder: one function per phase, in the order the pod lives them -------------------


@dataclass
class _Evidence:
    """What every phase reads (the pod, its container, its events) and what each adds to
    (phases, milestones, notes, problems: their order is the order the report prints)."""

    inputs: ColdStartInputs
    created: datetime
    name: str
    cspec: dict[str, Any]
    cstatus: dict[str, Any]
    events: list[Event]
    cevents: list[Event]  # the vLLM container's own events
    phases: dict[str, Phase]
    milestones: list[Milestone]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def pod(self) -> dict[str, Any]:
        return self.inputs.pod


@dataclass
class _Node:
    name: str | None
    nodeclaim: dict[str, Any] | None
    nodeclaim_name: str | None
    instance_type: str | None
    capacity_type: str | None
    ready_at: datetime | None


@dataclass
class _Attempt:
    """The container's state and the attempt its log belongs to (the latest one)."""

    restart_count: int
    running: dict[str, Any] | None
    terminated: dict[str, Any] | None
    waiting: dict[str, Any] | None
    last_terminated: dict[str, Any] | None
    first_start: datetime | None
    start: datetime | None = None
    end: datetime | None = None


def build_timeline(inputs: ColdStartInputs) -> Timeline:
    """The phase timeline of one pod's start. Raises ReportError on unusable input."""
    ev = _evidence(inputs)
    node = _node_phase(ev)
    image_s = _image_phase(ev)
    attempt = _container_start_phase(ev, node.ready_at, image_s)
    _restarts_phase(ev, attempt)
    restarts = _restarts(ev, attempt)
    log, facts = _vllm_log_phases(ev, attempt.start)
    ready_at, ready_source = _ready_phase(ev, log, facts, attempt.start)
    outcome, evidence_end = _outcome(ev, attempt, restarts, log, facts, ready_at)
    probe = _probe_findings(ev, attempt, restarts, log, outcome, ready_at)
    if outcome == "starting":
        ev.notes.append("the pod is not ready yet: phases after the last log line are in progress or not reached")
    hydration = _hydration(ev, node.nodeclaim)
    cache_events = _cache_events(ev)
    ev.milestones.sort(key=lambda m: m.at)
    meta = inputs.pod.get("metadata") or {}
    timeline = Timeline(
        pod_name=ev.name, namespace=str(meta.get("namespace", "default")), container=inputs.container, image=ev.cspec.get("image"),
        node_name=node.name, nodeclaim=node.nodeclaim_name, instance_type=node.instance_type, capacity_type=node.capacity_type,
        vllm_version=log.version if log else None, created=ev.created, ready_at=ready_at, ready_source=ready_source,
        outcome=outcome, phases=[ev.phases[k] for k in BY_KEY if k != "restarts" or attempt.restart_count],
        milestones=ev.milestones, restarts=restarts, startup_probe=probe, weights=facts.weights_info, compile=facts.compile_info,
        evidence_end=evidence_end, hydration=hydration, cache_events=cache_events, notes=ev.notes, problems=ev.problems,
    )
    if (u := timeline.unattributed_s) is not None:
        unknown = ", ".join(p.label for p in timeline.phases if p.status != MEASURED)
        ev.notes.append(f"{u:.1f} s of the total belong to phases the evidence does not separate: {unknown}")
    return timeline


def _evidence(inputs: ColdStartInputs) -> _Evidence:
    pod = inputs.pod
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    created = parse_time(meta.get("creationTimestamp"), field="pod metadata.creationTimestamp")
    if created is None:
        raise ReportError("pod metadata.creationTimestamp: missing; the pod JSON must come from `kubectl get pod -o json`")
    name, uid = str(meta.get("name", "?")), meta.get("uid")
    events = events_for(inputs.events, kind="Pod", name=name, uid=uid)
    ev = _Evidence(
        inputs=inputs, created=created, name=name,
        cspec=next((c for c in spec.get("containers") or [] if c.get("name") == inputs.container), {}),
        cstatus=next((c for c in status.get("containerStatuses") or [] if c.get("name") == inputs.container), {}),
        events=events, cevents=[e for e in events if e.field_path == container_field_path(inputs.container)],
        phases={key: Phase(key) for key in BY_KEY},
        milestones=[Milestone("pod created", created, "pod metadata.creationTimestamp")],
    )
    if not inputs.events:
        ev.notes.append("no events given: image pull and container start are unknown (events expire after 1 h by default)")
    return ev


def _node_phase(ev: _Evidence) -> _Node:
    """Pod created -> node ready: the NodeClaim's conditions, else the pod's scheduling."""
    phases, created = ev.phases, ev.created
    node_name = (ev.pod.get("spec") or {}).get("nodeName")
    scheduled_event = _first(ev.events, "Scheduled")
    scheduled_at = condition_time(ev.pod, "PodScheduled") or (scheduled_event.first if scheduled_event else None)
    nc = _nodeclaim_for(ev.inputs.nodeclaims, node_name, nominated_nodeclaim(ev.events))
    nc_name = instance_type = capacity_type = None
    node_ready_at, node_source = None, ""
    if nc is not None:
        nc_name = nc.get("metadata", {}).get("name")
        labels = nc.get("metadata", {}).get("labels") or {}
        instance_type = labels.get("node.kubernetes.io/instance-type")
        capacity_type = labels.get("karpenter.sh/capacity-type")
        steps = [(c, condition_time(nc, c)) for c in ("Launched", "Registered", "Initialized")]
        for cond, at in steps:
            if at:
                ev.milestones.append(Milestone(f"NodeClaim {cond.lower()}", at, f"nodeclaim/{nc_name} status.conditions[{cond}]"))
        initialized = steps[2][1]
        if initialized and initialized <= created:
            node_ready_at, node_source = scheduled_at, "pod PodScheduled (node already running)"
            phases["node_ready"].detail = f"existing node {node_name} (NodeClaim {nc_name} initialized before the pod)"
        elif initialized:
            node_ready_at = max(initialized, scheduled_at) if scheduled_at else initialized
            node_source = f"nodeclaim/{nc_name} Initialized" + (" / pod PodScheduled" if scheduled_at else "")
            parts = [f"{cond.lower()} +{seconds_between(created, at):.0f} s" for cond, at in steps if at]
            phases["node_ready"].detail = f"NodeClaim {nc_name} ({instance_type or '?'}, {capacity_type or '?'}): " + ", ".join(parts)
        else:
            ev.problems.append(f"NodeClaim {nc_name} is not Initialized yet")
    elif scheduled_at:
        node_ready_at, node_source = scheduled_at, "pod PodScheduled"
        phases["node_ready"].detail = f"no NodeClaim for node {node_name or '?'}: measured to the pod's scheduling"
        if ev.inputs.nodeclaims or "nodeclaims" in ev.inputs.sources:
            ev.notes.append(f"no NodeClaim matches node {node_name!r}: node phase runs from pod creation to scheduling")
    if scheduled_at:
        ev.milestones.append(Milestone("pod scheduled", scheduled_at, "pod PodScheduled condition / Scheduled event"))
    node = phases["node_ready"]
    node.seconds = _clamped(seconds_between(created, node_ready_at), "node ready", ev.notes)
    node.source = node_source
    if node.seconds is not None:
        node.status = MEASURED
    return _Node(node_name, nc, nc_name, instance_type, capacity_type, node_ready_at)


def _image_phase(ev: _Evidence) -> float | None:
    """The image pull, from the Pulled event (its message states the duration); returns its seconds."""
    pulled_ev = _first(ev.cevents, "Pulled")
    pulling_ev = _first(ev.cevents, "Pulling")
    img = ev.phases["image"]
    pull = parse_pulled(pulled_ev.message) if pulled_ev else None
    if pull and pull.present:
        img.seconds, img.status, img.source = 0.0, MEASURED, "Pulled event"
        img.detail = "already present on machine (served from the data volume)"
    elif pull and pull.seconds is not None:
        img.seconds, img.status, img.source = pull.seconds, MEASURED, "Pulled event message"
        size = f"{_fmt_bytes(pull.size_bytes)} " if pull.size_bytes else ""
        rate = f" at {pull.size_bytes / pull.seconds / 2**20:.0f} MiB/s" if pull.size_bytes and pull.seconds else ""
        img.detail = f"pulled {size}from the registry{rate}: not in the node's image cache"
        ev.problems.append("the vLLM image was pulled from the registry: the node's data volume did not hold it "
                           "(no snapshot on the node class, or a snapshot without this image digest)")
    elif pulled_ev and pulling_ev and pulled_ev.first and pulling_ev.first:
        img.seconds, img.status, img.source = seconds_between(pulling_ev.first, pulled_ev.first), MEASURED, "Pulling -> Pulled events"
        img.detail = "pulled (duration from event times)"
    elif ev.inputs.events:
        img.detail = f"no Pulled event for container {ev.inputs.container} (events expire after 1 h by default)"
    if pulled_ev and pulled_ev.first:
        ev.milestones.append(Milestone("image ready", pulled_ev.first, "Pulled event"))
    return img.seconds


def _container_start_phase(ev: _Evidence, node_ready_at: datetime | None, image_s: float | None) -> _Attempt:
    """Node ready -> first container start, less the pull; and which attempt the log belongs to."""
    started_ev = _first(ev.cevents, "Started")
    restart_count = int(ev.cstatus.get("restartCount") or 0)
    state, last_state = ev.cstatus.get("state") or {}, ev.cstatus.get("lastState") or {}
    attempt = _Attempt(restart_count, running=state.get("running"), terminated=state.get("terminated"),
                       waiting=state.get("waiting"), last_terminated=last_state.get("terminated"),
                       first_start=started_ev.first if started_ev else None)
    if attempt.first_start is None and restart_count == 0:
        attempt.first_start = parse_time((attempt.running or attempt.terminated or {}).get("startedAt"),
                                         field="containerStatuses.state.startedAt")
    if attempt.first_start:
        ev.milestones.append(Milestone("container started", attempt.first_start,
                                       "Started event" if started_ev else "containerStatuses"))
    cs = ev.phases["container_start"]
    if attempt.first_start and node_ready_at and image_s is not None:
        cs.seconds = _clamped(_less(seconds_between(node_ready_at, attempt.first_start), image_s), "container start", ev.notes)
        cs.source = "node ready -> Started event, less the image pull"
        cs.detail = "sandbox, volumes, init containers, container create"
        if cs.seconds is not None:
            cs.status = MEASURED
    _latest_attempt(attempt)
    return attempt


def _latest_attempt(attempt: _Attempt) -> None:
    if attempt.running:
        attempt.start = parse_time(attempt.running.get("startedAt"), field="containerStatuses.state.running.startedAt")
    elif attempt.terminated:
        attempt.start = parse_time(attempt.terminated.get("startedAt"), field="containerStatuses.state.terminated.startedAt")
        attempt.end = parse_time(attempt.terminated.get("finishedAt"), field="containerStatuses.state.terminated.finishedAt")
    elif attempt.waiting and attempt.last_terminated:  # CrashLoopBackOff: the log shown is the last attempt's
        attempt.start = parse_time(attempt.last_terminated.get("startedAt"), field="containerStatuses.lastState.terminated.startedAt")
        attempt.end = parse_time(attempt.last_terminated.get("finishedAt"), field="containerStatuses.lastState.terminated.finishedAt")
    else:
        attempt.start = attempt.first_start


def _restarts_phase(ev: _Evidence, attempt: _Attempt) -> None:
    """First container start -> start of the attempt in the log (0 without restarts)."""
    rs = ev.phases["restarts"]
    if attempt.restart_count == 0:
        rs.seconds, rs.status, rs.source = 0.0, MEASURED, "restartCount 0"
        return
    rs.seconds = _clamped(seconds_between(attempt.first_start, attempt.start), "restarts", ev.notes)
    rs.status = MEASURED if rs.seconds is not None else UNKNOWN
    rs.source = "first Started event -> start of the attempt in the log"
    rs.detail = f"{attempt.restart_count} restart(s); the phases below are the latest attempt's"
    if attempt.start:
        ev.milestones.append(Milestone(f"container started (attempt {attempt.restart_count + 1})", attempt.start, "containerStatuses"))


def _restarts(ev: _Evidence, attempt: _Attempt) -> Restarts:
    restarts = Restarts(count=attempt.restart_count)
    restarts.startup_probe_kills = sum(e.count for e in ev.cevents if is_startup_probe_kill(e))
    restarts.startup_probe_failures = sum(e.count for e in ev.cevents if is_startup_probe_failure(e))
    if attempt.last_terminated:
        restarts.last_termination = {k: attempt.last_terminated.get(k) for k in ("reason", "exitCode", "startedAt", "finishedAt")}
    return restarts


def _vllm_log_phases(ev: _Evidence, attempt_start: datetime | None) -> tuple[VllmLog | None, _VllmFacts]:
    """API init, weights, torch.compile and CUDA graphs, from the container log."""
    log = parse_vllm_log(ev.inputs.log, reference=ev.created) if ev.inputs.log else None
    if log is None:
        ev.notes.append("no container log given: the vLLM phases are unknown (save it with kubectl logs --timestamps)")
    elif not log.kubectl_timestamps:
        ev.notes.append("log saved without --timestamps: times come from vLLM's own lines (whole seconds, no year, read as UTC)")
    facts = _vllm_phases(log, attempt_start, ev.phases, ev.notes)
    if facts.weights_end:
        ev.milestones.append(Milestone("weights loaded", facts.weights_end, "vLLM log"))
    return log, facts


def _ready_phase(ev: _Evidence, log: VllmLog | None, facts: _VllmFacts,
                 attempt_start: datetime | None) -> tuple[datetime | None, str]:
    """When the pod was ready, and the engine's remaining start (weights loaded -> ready, less compile and graphs)."""
    ready_at, ready_source = _ready(ev.pod, log, attempt_start)
    if log and (hit := log.first("app_startup")) and hit.line.ts:
        ev.milestones.append(Milestone("API server up", hit.line.ts, "uvicorn 'Application startup complete.'", hit.line.ts_exact))
    if ready_at:
        ev.milestones.append(Milestone("ready", ready_at, ready_source))
    rest = ev.phases["engine_rest"]
    if ready_at and facts.weights_end and facts.compile_s is not None and facts.graphs_s is not None:
        rest.seconds = _clamped(_less(seconds_between(facts.weights_end, ready_at), facts.compile_s, facts.graphs_s), "engine rest", ev.notes)
        if rest.seconds is not None:
            rest.status, rest.source = MEASURED, f"weights loaded -> {ready_source}, less compile and graphs"
            rest.detail = "memory profiling, KV cache, warm-up, API server start, readiness"
    return ready_at, ready_source


def _outcome(ev: _Evidence, attempt: _Attempt, restarts: Restarts, log: VllmLog | None, facts: _VllmFacts,
             ready_at: datetime | None) -> tuple[str, datetime | None]:
    """ready | crash_loop | failed | starting, and where an unfinished attempt stopped; returns the
    outcome and when the evidence ends."""
    phases = ev.phases
    if ready_at:
        outcome = "ready"
    elif (attempt.waiting and attempt.waiting.get("reason") == "CrashLoopBackOff") or (
            attempt.restart_count and restarts.startup_probe_kills > 0):
        outcome = "crash_loop"
    elif attempt.terminated:
        outcome = "failed"
    else:
        outcome = "starting"
    evidence_end = attempt.end or (log.last_ts if log else None)
    if outcome != "ready" and attempt.start is None:
        # The container never started: the wait is in the node, the pull or the container start.
        pending = next((phases[k] for k in ("node_ready", "image", "container_start") if phases[k].status != MEASURED), None)
        if pending:
            pending.status, pending.source = IN_PROGRESS, "the container has not started"
        for key in VLLM_PHASES:
            phases[key].status = NOT_REACHED
    elif outcome != "ready":
        _mark_unfinished(phases, facts, attempt.start, evidence_end)
    if ev.inputs.previous_log and attempt.restart_count:
        prev = parse_vllm_log(ev.inputs.previous_log, reference=ev.created)
        restarts.previous_attempt_stopped_in = _stopped_in(prev)
    return outcome, evidence_end


def _probe_findings(ev: _Evidence, attempt: _Attempt, restarts: Restarts, log: VllmLog | None, outcome: str,
                    ready_at: datetime | None) -> ProbeWindow | None:
    """The startup probe against the start: kills, a window too short or too thin, a delay that held readiness back."""
    probe = _probe_window(ev.cspec)
    attempt_start = attempt.start
    if restarts.startup_probe_kills > 0:
        where = next((p for p in ev.phases.values() if p.status == IN_PROGRESS), None)
        msg = (f"killed by its startup probe {restarts.startup_probe_kills} time(s) "
               f"({restarts.startup_probe_failures} failed probes, {attempt.restart_count} restart(s))")
        if probe:
            msg += (f"; the probe allows {probe.window_s} s from container start "
                    f"({probe.initial_delay_s} + {probe.period_s} x ({probe.failure_threshold} - 1))")
        if where and outcome != "ready":
            msg += f"; the last attempt was in {where.label}" + (f" after {where.at_least:.0f} s in it" if where.at_least else "")
        ev.problems.append(msg + ": raise the startup budget or shorten the start (see docs/coldstart.md)")
    if probe and ready_at and attempt_start:
        needed = seconds_between(attempt_start, ready_at) or 0.0
        if needed > probe.window_s:
            ev.problems.append(f"ready {needed:.0f} s after container start, past the startup probe window of {probe.window_s} s")
        elif probe.window_s - needed < 0.1 * probe.window_s:
            ev.notes.append(f"startup probe margin is thin: ready after {needed:.0f} s of a {probe.window_s} s window")
    app_up = log.first("app_startup") if log else None
    if probe and ready_at and attempt_start and app_up and app_up.line.ts:
        # Readiness probes wait for the startup probe, whose first try is at initialDelaySeconds.
        first_probe = attempt_start + timedelta(seconds=probe.initial_delay_s)
        held = seconds_between(app_up.line.ts, first_probe) or 0.0
        if held > probe.period_s and ready_at >= first_probe:
            ev.notes.append(f"the API was up {seconds_between(attempt_start, app_up.line.ts):.0f} s after container start, "
                            f"but the startup probe's initialDelaySeconds ({probe.initial_delay_s}) held readiness back "
                            f"~{held:.0f} s: a shorter delay with more failures allowed keeps the same window")
    return probe


def _hydration(ev: _Evidence, nodeclaim: dict[str, Any] | None) -> Hydration | None:
    inputs = ev.inputs
    hydration = hydration_of(nodeclaim, inputs.nodeclasses, inputs.fsr) if (inputs.nodeclasses or inputs.fsr is not None) else None
    if hydration is not None and hydration.lazy:
        ev.problems.append(f"the node's data volume was lazily loaded ({hydration.detail}): see docs/coldstart.md, Hydration")
    return hydration


def _cache_events(ev: _Evidence) -> list[CacheEvent]:
    """The compile-cache sync runs in time order (restore, then publish), whatever order the logs were saved in."""
    cache_events = sorted(parse_cache_events(ev.inputs.compile_cache_log), key=lambda e: (e.end is None, e.end or ev.created))
    for cache in cache_events:
        if cache.end:
            ev.milestones.append(Milestone(cache.event.replace("_", " ") + " done", cache.end, "compile-cache log"))
    return cache_events


def _vllm_phases(log: VllmLog | None, attempt_start: datetime | None, phases: dict[str, Phase],
                 notes: list[str]) -> _VllmFacts:
    """Fill api_init, weights, torch_compile and cuda_graphs from the log."""
    facts = _VllmFacts()
    if log is None:
        return facts
    weights_end = compile_s = graphs_s = None
    weights_info: dict[str, Any] | None = None
    hit = log.longest("model_loaded") or log.longest("weights_loaded") or log.longest("runai")
    stream = log.streamer()
    load_start = log.first("load_start")
    if hit is None and load_start is not None and load_start.line.ts is not None:
        # Loading began but never finished (the attempt stopped in it): vLLM API init still ends here.
        facts.weights_start = load_start.line.ts
        ai = phases["api_init"]
        ai.seconds = _clamped(seconds_between(attempt_start, load_start.line.ts), "vLLM API init", notes)
        if ai.seconds is not None:
            ai.status, ai.source = MEASURED, f"container started -> '{load_start.line.message}' line"
    if hit is not None and hit.line.ts is not None:
        w = phases["weights"]
        w.seconds, w.status = hit.secs, MEASURED
        w.source = {"model_loaded": "'Model loading took' line", "weights_loaded": "'Loading weights took' line",
                    "runai": "'[RunAI Streamer] Overall time to stream' line"}[hit.marker]
        weights_end = hit.line.ts
        facts.weights_start = weights_end - timedelta(seconds=hit.secs)
        weights_info = {"seconds": hit.secs, "gpuMemoryGiB": float(hit.groups["gib"]) if "gib" in hit.groups else None,
                        "streamer": stream}
        w.detail = (f"streamed {stream['text']} in {stream['seconds']:.1f} s (Run:ai)" if stream
                    else "no Run:ai streamer line (another load format, or runai-model-streamer >= 0.17 "
                         "without RUNAI_STREAMER_LOG_TO_STDERR=1?)")
        ai = phases["api_init"]
        if attempt_start is not None:
            ai.seconds = _clamped(_less(seconds_between(attempt_start, weights_end), hit.secs), "vLLM API init", notes)
            if ai.seconds is not None:
                ai.status, ai.source = MEASURED, "container started -> start of weight loading"
                ai.detail = "Python imports, arg parsing, engine process, CUDA init"

    compile_info: dict[str, Any] = {}
    tc, cg = phases["torch_compile"], phases["cuda_graphs"]
    if log.enforce_eager:
        compile_s = graphs_s = 0.0
        for p in (tc, cg):
            p.seconds, p.status, p.source, p.detail = 0.0, MEASURED, "engine config", "enforce_eager=True: not run"
        compile_info["enforceEager"] = True
    else:
        if total := log.longest("compile_total"):
            # "torch.compile takes|took|and initial profiling/warmup run together took N s in total"
            compile_s = total.secs
            tc.source = "'" + re.sub(r"\d+(?:\.\d+)? s in total$", "... in total", total.line.message) + "' line"
        elif (dyn := log.longest("dynamo")) and (part := log.longest("compile_graph") or log.longest("compile_cache_hit")):
            compile_s, tc.source = dyn.secs + part.secs, "Dynamo + graph compile lines (no total line)"
        if compile_s is not None:
            tc.seconds, tc.status = compile_s, MEASURED
        hit_cache = log.first("compile_cache_hit") or log.first("compile_aot_load")  # v0.34.0: AOT artifact
        compiled = log.first("compile_graph") or log.first("compile_aot_saved")
        cache_dir = log.first("compile_cache_dir")
        compile_info["cacheHit"] = True if hit_cache else (False if compiled else None)
        compile_info["cacheDir"] = cache_dir.groups["dir"] if cache_dir else None
        if aot := log.first("compile_aot_load") or log.first("compile_aot_saved"):
            compile_info["aotPath"] = aot.groups["path"]
        if warmup := log.longest("compile_warmup"):
            compile_info["warmupSeconds"] = warmup.secs  # v0.34.0: after the compile, part of engine_rest
        if hit_cache:
            tc.detail = "loaded from the compile cache" + (" (AOT artifact)" if hit_cache.marker == "compile_aot_load" else "")
        elif compiled:
            tc.detail = "compiled (no cache hit)"
        if total and "together" in total.line.message:
            tc.detail = (tc.detail + "; includes the initial profiling/warm-up run").lstrip("; ")
        if cache_dir:
            tc.detail = (tc.detail + f"; cache {cache_dir.groups['dir']}").lstrip("; ")
        if graphs := log.longest("graph_capture"):
            graphs_s = graphs.secs
            cg.seconds, cg.status, cg.source = graphs_s, MEASURED, "'Graph capturing finished' line"
            cg.detail = f"{graphs.groups['gib']} GiB of GPU memory"
    if init := log.longest("engine_init"):
        compile_info["engineInitSeconds"] = init.secs
    facts.weights_end, facts.compile_s, facts.graphs_s = weights_end, compile_s, graphs_s
    facts.weights_info, facts.compile_info = weights_info, compile_info or None
    return facts


def _ready(pod: dict[str, Any], log: VllmLog | None, attempt_start: datetime | None) -> tuple[datetime | None, str]:
    hits = [h for h in (log.hits.get("models_ok", []) if log else []) if h.line.ts is not None
            and (attempt_start is None or h.line.ts >= attempt_start)]
    exact = next((h for h in hits if h.line.ts_exact), None)
    if exact:
        return exact.line.ts, "first GET /v1/models 200 in the log"
    ready = condition_time(pod, "Ready")
    if ready and (attempt_start is None or ready >= attempt_start):
        return ready, "pod Ready condition"
    if hits:
        return hits[0].line.ts, "first GET /v1/models 200 (time of the line before it)"
    return None, "not ready"


def _mark_unfinished(phases: dict[str, Phase], facts: _VllmFacts, attempt_start: datetime | None,
                     evidence_end: datetime | None) -> None:
    """For an attempt that never got ready: the phase after the last measured one is in progress,
    the ones after it not reached. Unknown phases before a measured one stay unknown."""
    order = list(VLLM_PHASES)
    measured = [i for i, k in enumerate(order) if phases[k].status == MEASURED]
    nxt = (measured[-1] + 1) if measured else 0
    if nxt >= len(order):
        return
    current = phases[order[nxt]]
    current.status = IN_PROGRESS
    began = facts.start_of(current.key, attempt_start)
    current.at_least = seconds_between(began, evidence_end) if began and evidence_end else None
    current.source = "no end line before the evidence ends"
    for key in order[nxt + 1:]:
        phases[key].status = NOT_REACHED


def _stopped_in(log: VllmLog) -> str:
    """The phase a previous attempt's log stops in (the first one without its end line)."""
    ends = {"weights": ("model_loaded", "weights_loaded", "runai"), "torch_compile": ("compile_total",),
            "cuda_graphs": ("graph_capture",), "engine_rest": ("models_ok", "app_startup")}
    stopped = "api_init"
    for key in ("weights", "torch_compile", "cuda_graphs", "engine_rest"):
        if any(log.first(m) for m in ends[key]):
            idx = VLLM_PHASES.index(key)
            stopped = VLLM_PHASES[idx + 1] if idx + 1 < len(VLLM_PHASES) else "ready"
    return BY_KEY[stopped].label if stopped in BY_KEY else stopped
