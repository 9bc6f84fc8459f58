"""What starts the pipeline (ECR pushes, a schedule) and what cleans up after dead executions."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from settings import names
from stacks.nag import acknowledge

JANITOR_STATUSES = ["ABORTED", "TIMED_OUT", "FAILED"]


def tag_filter(pattern: str) -> list[object]:
    """EventBridge filter list for the pushed tag: a wildcard filter if the pattern has '*', else the exact tag."""
    return events.Match.wildcard(pattern) if "*" in pattern else [pattern]


class PipelineTriggers(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.IStateMachine, state_machine_arn: str,
                 janitor: lambda_.IFunction, repository: str, tag_pattern: str, schedule: str | None) -> None:
        super().__init__(scope, construct_id)
        # A successful push of a matching tag starts a build of exactly the pushed digest.
        self.ecr_push = events.Rule(
            self, "EcrPush", description=f"vllm-coldstart: build a snapshot when {repository}:{tag_pattern} is pushed",
            event_pattern=events.EventPattern(
                source=["aws.ecr"], detail_type=["ECR Image Action"],
                detail={"action-type": ["PUSH"], "result": ["SUCCESS"], "repository-name": [repository],
                        "image-tag": tag_filter(tag_pattern)},
            ),
        )
        self.ecr_push.add_target(targets.SfnStateMachine(
            state_machine, retry_attempts=3, max_event_age=Duration.hours(2),
            input=events.RuleTargetInput.from_object({
                "trigger": names.TRIGGER_ECR,
                "repositoryName": events.EventField.from_path("$.detail.repository-name"),
                "imageTag": events.EventField.from_path("$.detail.image-tag"),
                "imageDigest": events.EventField.from_path("$.detail.image-digest"),
            }),
        ))
        self.schedule = None
        if schedule:
            self.schedule = events.Rule(self, "Schedule", schedule=events.Schedule.expression(schedule),
                                        description="vllm-coldstart: scheduled rebuild (new Bottlerocket and base images)")
            self.schedule.add_target(targets.SfnStateMachine(
                state_machine, retry_attempts=3, input=events.RuleTargetInput.from_object({"trigger": names.TRIGGER_SCHEDULE})))

        # Aborted and timed-out executions never reach their own Catch: the janitor cleans up by tag.
        self.janitor = events.Rule(
            self, "Janitor", description="vllm-coldstart: clean up builder resources of executions that did not finish",
            event_pattern=events.EventPattern(
                source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                detail={"status": JANITOR_STATUSES, "stateMachineArn": [state_machine_arn]},
            ),
        )
        # The janitor is the last safety net for aborted runs, so its own failures must not vanish: an event
        # EventBridge could not deliver, and an invocation that still failed after Lambda's async retries,
        # both land in one encrypted queue (kept 14 days; alarmed in PipelineAlarms) with the original event.
        self.janitor_dead_letters = sqs.Queue(
            self, "JanitorDeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.janitor_dead_letters, "AwsSolutions-SQS3",
                    "This queue IS the dead-letter queue of the janitor rule and the janitor's async on-failure destination; "
                    "an operator drains it after fixing the cause (docs/operations.md).")
        janitor.configure_async_invoke(on_failure=destinations.SqsDestination(self.janitor_dead_letters), retry_attempts=2,
                                       max_event_age=Duration.hours(6))
        self.janitor.add_target(targets.LambdaFunction(janitor, retry_attempts=3, max_event_age=Duration.hours(1),
                                                       dead_letter_queue=self.janitor_dead_letters))
