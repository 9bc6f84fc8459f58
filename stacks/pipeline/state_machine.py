"""The snapshot pipeline's state machine, readable top to bottom in ``SnapshotPipelineDefinition``.

Flow: ResolveInput -> (Debounce) -> CheckGate loop -> LaunchBuilder -> CheckBuilderOnline loop ->
StartPull -> CheckPull loop -> VerifyImages -> StopBuilder -> CheckBuilderStopped loop ->
CreateSnapshot -> CheckSnapshot loop -> Publish -> Cleanup loop -> Retention -> Published.

- Every wait is a Wait state reading its seconds from the plan (``SecondsPath``) followed by a
  bounded counter: ``$.poll.count >= <limit>`` ends the loop with a named timeout error.
- Retry and catch policy is built in one place (``RETRY_POLICY`` and ``_task``).
- Every failure after the launch is caught into ``$.error`` and goes through Cleanup before the
  execution fails with that error; the first state (ResolveInput) and the gate run before anything
  exists, so their errors fail the execution directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from lambdas.snapshot_pipeline.core import errors
from lambdas.snapshot_pipeline.steps.gate import PROCEED, PUBLISHED, SUPERSEDED, WAIT

J = sfn.JsonPath


@dataclass(frozen=True)
class Retry:
    errors: tuple[str, ...]
    interval_seconds: int
    max_attempts: int
    backoff_rate: float
    max_delay_seconds: int


# The whole retry policy. Lambda-level errors (throttled invoke, service errors) and our own
# AwsThrottled/AwsTransient retry quickly with full jitter; InsufficientCapacity (raised only by
# LaunchBuilder after trying every private subnet) waits minutes for capacity to come back.
RETRY_POLICY: tuple[Retry, ...] = (
    Retry(errors.TRANSIENT_ERRORS, interval_seconds=2, max_attempts=4, backoff_rate=2.0, max_delay_seconds=30),
    Retry((errors.InsufficientCapacity.__name__,), interval_seconds=60, max_attempts=3, backoff_rate=2.0, max_delay_seconds=300),
)
ERROR_PATH = "$.error"


class SnapshotPipelineDefinition(Construct):
    """Builds the chain; ``self.start`` is the first state. ``fns`` maps step name -> function."""

    def __init__(self, scope: Construct, construct_id: str, *, fns: dict[str, lambda_.IFunction]) -> None:
        super().__init__(scope, construct_id)
        self.fns = fns
        # Back to front: each phase is built with its successor (states are created in this order).
        self.cleanup_entry = self._cleanup_phase()
        publish = self._publish_phase()
        create_snapshot = self._snapshot_phase(on_done=publish)
        stop = self._stop_phase(on_done=create_snapshot)
        start_pull = self._pull_phase(on_done=stop)
        launch = self._launch_phase(on_done=start_pull)
        gate = self._gate_phase(on_proceed=launch)
        self.start = self._resolve_phase(on_done=gate)

    # ---- cleanup (success and every failure path), then the end states ---------------------------
    def _cleanup_phase(self) -> sfn.Pass:
        """StartCleanupPolls: Cleanup until done, then BuildFailed (``$.error`` set) or Retention -> Published."""
        build_failed = sfn.Fail(self, "BuildFailed", error_path="$.error.Error", cause_path="$.error.Cause")
        cleanup_failed = sfn.Fail(self, "CleanupFailed", error_path="$.cleanupError.Error", cause_path="$.cleanupError.Cause")
        cleanup_incomplete = sfn.Fail(
            self, "CleanupIncomplete", error=errors.CLEANUP_TIMEOUT,
            cause="builder resources of this execution still exist after the cleanup polls; the janitor retries on the FAILED event",
        )
        published = sfn.Succeed(self, "Published")

        retention = self._task("Retention", "retention", {}, result_path="$.retention", catch_to=build_failed)
        retention.next(published)
        outcome = sfn.Choice(self, "BuildSucceeded?").when(sfn.Condition.is_present(ERROR_PATH), build_failed).otherwise(retention)
        cleanup = self._task("Cleanup", "cleanup", {"executionArn": J.execution_id}, result_path="$.cleanup", catch_to=cleanup_failed,
                             catch_path="$.cleanupError")
        return self._poll_loop(
            "Cleanup", cleanup, done=sfn.Condition.boolean_equals("$.cleanup.done", True), on_done=outcome,
            limit_path="$.plan.maxPolls", on_timeout=cleanup_incomplete,
        )

    # ---- publish ---------------------------------------------------------------------------------
    def _publish_phase(self) -> tasks.LambdaInvoke:
        publish = self._task("Publish", "publish",
                             {"plan": J.object_at("$.plan"), "execution": J.object_at("$.execution"), "snapshot": J.object_at("$.snapshot")},
                             result_path="$.published")
        publish.next(self.cleanup_entry)
        return publish

    # ---- build: launch -> online -> pull -> verify -> stop -> snapshot ---------------------------
    def _snapshot_phase(self, *, on_done: sfn.IChainable) -> tasks.LambdaInvoke:
        """CreateSnapshot, then CheckSnapshot until completed."""
        check_snapshot = self._task("CheckSnapshot", "check_snapshot", {"snapshotId": J.string_at("$.snapshot.snapshotId")},
                                    result_path="$.check")
        snapshot_loop = self._poll_loop(
            "Snapshot", check_snapshot, done=sfn.Condition.boolean_equals("$.check.completed", True), on_done=on_done,
            limit_path="$.plan.maxPolls",
            on_timeout=self._timeout(errors.SNAPSHOT_TIMEOUT, "snapshot {} did not complete within {} polls of {} s",
                                     "$.snapshot.snapshotId", "$.plan.maxPolls"),
        )
        create_snapshot = self._task("CreateSnapshot", "create_snapshot", self._builder_payload(), result_path="$.snapshot")
        create_snapshot.next(snapshot_loop)
        return create_snapshot

    def _stop_phase(self, *, on_done: sfn.IChainable) -> tasks.LambdaInvoke:
        """StopBuilder, then CheckBuilderStopped until stopped."""
        check_stopped = self._task("CheckBuilderStopped", "check_stopped", {"instanceId": J.string_at("$.builder.instanceId")},
                                   result_path="$.check")
        stop_loop = self._poll_loop(
            "Stop", check_stopped, done=sfn.Condition.boolean_equals("$.check.stopped", True), on_done=on_done,
            limit_path="$.plan.maxPolls",
            on_timeout=self._timeout(errors.STOP_TIMEOUT, "builder {} did not stop within {} polls of {} s",
                                     "$.builder.instanceId", "$.plan.maxPolls"),
        )
        stop = self._task("StopBuilder", "stop_builder", {"instanceId": J.string_at("$.builder.instanceId")}, result_path=J.DISCARD)
        stop.next(stop_loop)
        return stop

    def _pull_phase(self, *, on_done: sfn.IChainable) -> tasks.LambdaInvoke:
        """StartPull, CheckPull until the command is done, then VerifyImages."""
        verify = self._task("VerifyImages", "verify_images",
                            {"commandId": J.string_at("$.command.commandId"), "instanceId": J.string_at("$.builder.instanceId"),
                             "plan": J.object_at("$.plan")},
                            result_path="$.verified")
        verify.next(on_done)
        check_pull = self._task("CheckPull", "check_pull",
                                {"commandId": J.string_at("$.command.commandId"), "instanceId": J.string_at("$.builder.instanceId")},
                                result_path="$.check")
        pull_loop = self._poll_loop(
            "Pull", check_pull, done=sfn.Condition.boolean_equals("$.check.done", True), on_done=verify,
            limit_path="$.plan.commandMaxPolls",
            on_timeout=self._timeout(errors.PULL_TIMEOUT, "pull command {} did not finish within {} polls of {} s",
                                     "$.command.commandId", "$.plan.commandMaxPolls"),
        )
        start_pull = self._task("StartPull", "start_pull", self._builder_payload(), result_path="$.command")
        start_pull.next(pull_loop)
        return start_pull

    def _launch_phase(self, *, on_done: sfn.IChainable) -> tasks.LambdaInvoke:
        """LaunchBuilder, then CheckBuilderOnline until SSM reports it online."""
        check_online = self._task("CheckBuilderOnline", "check_online", {"instanceId": J.string_at("$.builder.instanceId")},
                                  result_path="$.check")
        online_loop = self._poll_loop(
            "Online", check_online, done=sfn.Condition.boolean_equals("$.check.online", True), on_done=on_done,
            limit_path="$.plan.maxPolls",
            on_timeout=self._timeout(errors.BUILDER_ONLINE_TIMEOUT, "SSM did not report builder {} online within {} polls of {} s",
                                     "$.builder.instanceId", "$.plan.maxPolls"),
        )
        launch = self._task("LaunchBuilder", "launch_builder", {"plan": J.object_at("$.plan"), "execution": J.object_at("$.execution")},
                            result_path="$.builder")
        launch.next(online_loop)
        return launch

    # ---- before anything exists: resolve and gate (no cleanup needed) ----------------------------
    def _gate_phase(self, *, on_proceed: sfn.IChainable) -> sfn.Pass:
        """StartGatePolls: CheckGate until it says proceed (or ends the run: superseded, published, busy)."""
        gate = self._task("CheckGate", "gate", {"plan": J.object_at("$.plan"), "execution": J.object_at("$.execution")},
                          result_path="$.gate", catch_to=None)
        busy = sfn.Fail(self, "PipelineBusy", error=errors.PIPELINE_BUSY_TIMEOUT,
                        cause="an older execution of this pipeline kept running past gateMaxPolls; check it, then rerun")
        reset_gate = self._reset("Gate")
        wait_gate = sfn.Wait(self, "WaitForOlderRun", time=sfn.WaitTime.seconds_path("$.plan.pollIntervalSeconds"))
        gate_choice = (
            sfn.Choice(self, "GateDecision")
            .when(sfn.Condition.string_equals("$.gate.decision", PROCEED), on_proceed)
            .when(sfn.Condition.string_equals("$.gate.decision", SUPERSEDED), sfn.Succeed(self, "Superseded"))
            .when(sfn.Condition.string_equals("$.gate.decision", PUBLISHED), sfn.Succeed(self, "AlreadyPublished"))
            .when(sfn.Condition.and_(sfn.Condition.string_equals("$.gate.decision", WAIT),
                                     sfn.Condition.number_greater_than_equals_json_path("$.poll.count", "$.plan.gateMaxPolls")), busy)
            .otherwise(wait_gate)
        )
        reset_gate.next(gate)
        gate.next(gate_choice)
        wait_gate.next(self._increment("Gate")).next(gate)
        return reset_gate

    def _resolve_phase(self, *, on_done: sfn.IChainable) -> tasks.LambdaInvoke:
        """ResolveInput (the first state: its result is the whole working state), then Debounce if the plan asks."""
        debounce = sfn.Wait(self, "Debounce", time=sfn.WaitTime.seconds_path("$.plan.debounceSeconds"))
        debounce.next(on_done)
        resolve = self._task(
            "ResolveInput", "resolve_input",
            {"input": J.entire_payload, "executionArn": J.execution_id, "stateMachineArn": J.state_machine_id,
             "startTime": J.execution_start_time},
            result_path="$", catch_to=None,
        )
        resolve.next(sfn.Choice(self, "Debounce?").when(sfn.Condition.number_greater_than("$.plan.debounceSeconds", 0), debounce)
                     .otherwise(on_done))
        return resolve

    # ---- the one place retry/catch policy is attached --------------------------------------------
    def _task(self, state: str, step: str, payload: dict, *, result_path: str, catch_to: sfn.IChainable | None | str = "cleanup",
              catch_path: str = ERROR_PATH) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self, state, lambda_function=self.fns[step], payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True, retry_on_service_exceptions=False, result_path=result_path,
        )
        for retry in RETRY_POLICY:
            task.add_retry(errors=list(retry.errors), interval=Duration.seconds(retry.interval_seconds), max_attempts=retry.max_attempts,
                           backoff_rate=retry.backoff_rate, max_delay=Duration.seconds(retry.max_delay_seconds),
                           jitter_strategy=sfn.JitterType.FULL)
        target = self.cleanup_entry if catch_to == "cleanup" else catch_to
        if target is not None:
            task.add_catch(target, errors=[sfn.Errors.ALL], result_path=catch_path)
        return task

    def _builder_payload(self) -> dict:
        return {"instanceId": J.string_at("$.builder.instanceId"), "plan": J.object_at("$.plan"), "execution": J.object_at("$.execution")}

    # ---- bounded polling -------------------------------------------------------------------------
    def _reset(self, name: str) -> sfn.Pass:
        return sfn.Pass(self, f"Start{name}Polls", result=sfn.Result.from_object({"count": 0}), result_path="$.poll")

    def _increment(self, name: str) -> sfn.Pass:
        return sfn.Pass(self, f"Count{name}Poll", parameters={"count": J.math_add(J.number_at("$.poll.count"), 1)}, result_path="$.poll")

    def _timeout(self, error: str, cause: str, subject_path: str, limit_path: str) -> sfn.Pass:
        """Record a named timeout in $.error; the loop sends it to cleanup, then BuildFailed raises it."""
        state = sfn.Pass(
            self, f"{error}Reached",
            parameters={"Error": error, "Cause": J.format(cause, J.string_at(subject_path), J.string_at(limit_path),
                                                          J.string_at("$.plan.pollIntervalSeconds"))},
            result_path=ERROR_PATH,
        )
        state.next(self.cleanup_entry)
        return state

    def _poll_loop(self, name: str, check: tasks.LambdaInvoke, *, done: sfn.Condition, on_done: sfn.IChainable, limit_path: str,
                   on_timeout: sfn.IChainable) -> sfn.Pass:
        """Start{name}Polls -> check -> done? on_done : count >= limit? on_timeout : Wait -> count+1 -> check."""
        reset = self._reset(name)
        wait = sfn.Wait(self, f"Wait{name}", time=sfn.WaitTime.seconds_path("$.plan.pollIntervalSeconds"))
        choice = (
            sfn.Choice(self, f"{name}Done?")
            .when(done, on_done)
            .when(sfn.Condition.number_greater_than_equals_json_path("$.poll.count", limit_path), on_timeout)
            .otherwise(wait)
        )
        reset.next(check)
        check.next(choice)
        wait.next(self._increment(name)).next(check)
        return reset
