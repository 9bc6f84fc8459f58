"""create-snapshot: start (or attach to) the pipeline's execution and follow it state by state.

The trace is built from ``get_execution_history`` events, so elapsed times are the service's own
timestamps (the same on a re-attach) and nothing depends on how often we poll.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coldstart.ops.errors import OperatorError
from k8s_charts.inputs import SNAPSHOT_ID
from lambdas.snapshot_pipeline.steps import gate as gate_decisions

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# Events that carry an error: the state that was running when they happened is the failing state.
_ERROR_EVENTS = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "LambdaFunctionStartFailed": "lambdaFunctionStartFailedEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
}
# Plumbing (loop counters, waits, branches, the final Succeed): printed only with --verbose; the
# clock column still shows the time they took.
_QUIET_STATE_TYPES = ("Wait", "Choice", "Succeed", "Pass")


@dataclass
class TraceLine:
    kind: str  # "start" | "enter" | "exit" | "error" | "end"
    text: str
    state: str | None = None
    elapsed: float | None = None  # time spent in the state (exit lines)
    quiet: bool = False  # plumbing, a state being entered, or one poll of a loop: shown only with --verbose
    at: float = 0.0  # seconds since the execution started


@dataclass
class FollowResult:
    execution_arn: str
    status: str
    snapshot_id: str | None = None
    failed_state: str | None = None
    error: str | None = None
    cause: str | None = None
    states: list[tuple[str, float]] = field(default_factory=list)  # (state, seconds) per exit, in order
    already_published: bool = False  # the gate found this build published: nothing rebuilt
    superseded_by: str | None = None  # an ECR-triggered run handed over to a newer execution

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def running_execution(sfn: Any, state_machine_arn: str) -> str | None:
    """The newest RUNNING execution of the state machine, if any."""
    executions = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=10)["executions"]
    if not executions:
        return None
    return max(executions, key=lambda e: e["startDate"])["executionArn"]


def start_or_attach(sfn: Any, state_machine_arn: str, execution_input: dict[str, Any]) -> tuple[str, bool]:
    """(execution ARN, attached?). A running build is attached to: a second one would only wait for it (gate)."""
    running = running_execution(sfn, state_machine_arn)
    if running:
        return running, True
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(execution_input))["executionArn"]
    return arn, False


def parse_input(raw: str | None, force: bool) -> dict[str, Any]:
    """--input JSON (an object), with --force adding ``"force": true``."""
    value: Any = {}
    if raw:
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise OperatorError(f"--input: not valid JSON ({exc}); pass an object such as '{{\"force\": true}}'") from None
        if not isinstance(value, dict):
            raise OperatorError(f"--input: expected a JSON object, got {type(value).__name__}")
    if force:
        value["force"] = True
    return value


class TraceBuilder:
    """Turns history events into trace lines and remembers what the outcome needs.

    Without --verbose an operator sees one line per Task state with its time. A polled Task (the
    same state visited again and again by a Wait/Choice loop) is summarised once, when the loop
    ends ("CheckPull x37  9m12s"), instead of one line per poll.
    """

    def __init__(self) -> None:
        self.started: datetime | None = None
        self.entered: dict[str, datetime] = {}
        self.first_entered: dict[str, datetime] = {}
        self.visits: dict[str, int] = {}
        self.state_type: dict[str, str] = {}
        self.held: dict[str, TraceLine] = {}  # loop summaries waiting for the loop to end
        self.current: str | None = None
        self.failed_state: str | None = None
        self.error: str | None = None
        self.cause: str | None = None
        self.states: list[tuple[str, float]] = []

    def feed(self, event: dict[str, Any]) -> Iterator[TraceLine]:
        for line in self._lines(event):
            if not line.at:
                line.at = self.elapsed(event["timestamp"])
            yield line

    def _flush(self) -> Iterator[TraceLine]:
        yield from self.held.values()
        self.held.clear()

    def _lines(self, event: dict[str, Any]) -> Iterator[TraceLine]:
        kind: str = event["type"]
        ts: datetime = event["timestamp"]
        if kind == "ExecutionStarted":
            self.started = ts
            yield TraceLine("start", "execution started")
        elif kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self.visits[name] = self.visits.get(name, 0) + 1
            if self.visits[name] == 1:  # a state never seen before: any loop before it has ended
                yield from self._flush()
                self.first_entered[name] = ts
            self.entered[name], self.current, self.state_type[name] = ts, name, kind[: -len("StateEntered")]
            yield TraceLine("enter", name, state=name, quiet=True)
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            seconds = (ts - self.entered.get(name, ts)).total_seconds()
            self.states.append((name, seconds))
            visit = self.visits.get(name, 1)
            plumbing = self.state_type.get(name) in _QUIET_STATE_TYPES
            yield TraceLine("exit", f"{name} (#{visit})" if visit > 1 else name, state=name, elapsed=seconds, quiet=plumbing or visit > 1)
            if visit > 1 and not plumbing:
                loop_seconds = (ts - self.first_entered.get(name, ts)).total_seconds()
                self.held[name] = TraceLine("exit", f"{name} x{visit}", state=name, elapsed=loop_seconds, at=self.elapsed(ts))
        elif kind in _ERROR_EVENTS:
            yield from self._flush()
            details = event.get(_ERROR_EVENTS[kind], {})
            error, cause = details.get("error") or kind, short_cause(details.get("cause"))
            if kind.startswith("Execution"):
                # The last task error names the state that broke; a Catch -> Fail state only relays it.
                self.error, self.cause = self.error or error, self.cause or cause
                self.failed_state = self.failed_state or self.current
                yield TraceLine("end", f"{kind}: {error}: {cause}".rstrip(": "))
            else:
                self.failed_state, self.error, self.cause = self.current, error, cause
                yield TraceLine("error", f"{self.current}: {error}: {cause}".rstrip(": "), state=self.current)
        elif kind == "ExecutionSucceeded":
            yield from self._flush()
            yield TraceLine("end", "execution succeeded")

    def elapsed(self, ts: datetime) -> float:
        return (ts - self.started).total_seconds() if self.started else 0.0


def short_cause(cause: str | None) -> str:
    """Lambda causes are JSON ({"errorMessage", "errorType", "stackTrace"}): keep the message."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause.strip().splitlines()[0] if cause.strip() else ""
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])
    return cause


def _new_events(sfn: Any, execution_arn: str, after_id: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(e for e in page["events"] if e["id"] > after_id)
        if not page.get("nextToken"):
            return sorted(events, key=lambda e: e["id"])
        kwargs["nextToken"] = page["nextToken"]


def find_snapshot_id(output: str | None) -> str | None:
    """The snapshot ID in the execution output: the publish step's, else a ``snapshotId`` anywhere."""
    data = _json_object(output)
    published = data.get("published")
    if isinstance(published, dict) and _is_snapshot_id(published.get("snapshotId")):
        return str(published["snapshotId"])
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if _is_snapshot_id(node.get("snapshotId")):
                return str(node["snapshotId"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _is_snapshot_id(value: Any) -> bool:
    return isinstance(value, str) and SNAPSHOT_ID.fullmatch(value) is not None


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def follow(
    sfn: Any,
    execution_arn: str,
    emit: Callable[[TraceLine], None],
    *,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowResult:
    """Print the trace as the execution runs; return its outcome once it is terminal."""
    builder = TraceBuilder()
    last_id = 0
    while True:
        # Describe before reading history, so the history read afterwards holds every final event.
        described = sfn.describe_execution(executionArn=execution_arn)
        for event in _new_events(sfn, execution_arn, last_id):
            last_id = event["id"]
            for line in builder.feed(event):
                emit(line)
        if described["status"] in TERMINAL:
            break
        sleep(poll_seconds)
    result = FollowResult(execution_arn=execution_arn, status=described["status"], states=builder.states)
    if result.succeeded:
        result.snapshot_id = find_snapshot_id(described.get("output"))
        gate = _json_object(described.get("output")).get("gate") or {}
        result.already_published = gate.get("decision") == gate_decisions.PUBLISHED
        result.superseded_by = gate.get("by") if gate.get("decision") == gate_decisions.SUPERSEDED else None
    else:
        result.failed_state = builder.failed_state
        result.error = builder.error or described.get("error") or described["status"]
        result.cause = builder.cause or short_cause(described.get("cause"))
    return result
