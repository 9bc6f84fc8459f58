"""Failure alarms: failed, timed-out and aborted executions and janitor errors, to an encrypted topic."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class PipelineAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.StateMachine, janitor: lambda_.IFunction,
                 janitor_dead_letters: sqs.IQueue, email: str | None) -> None:
        super().__init__(scope, construct_id)
        # A customer-managed key: CloudWatch can only publish to an encrypted topic whose key policy
        # lets cloudwatch.amazonaws.com use the key, which the AWS-managed aws/sns key does not.
        self.key = kms.Key(self, "TopicKey", enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                           description="vllm-coldstart pipeline alarm topic")
        self.key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")], actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"]))
        self.topic = sns.Topic(self, "Topic", display_name="vllm-coldstart snapshot pipeline alarms", master_key=self.key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        five_minutes = Duration.minutes(5)
        metrics = {
            "ExecutionsFailed": state_machine.metric_failed(period=five_minutes, statistic="Sum"),
            "ExecutionsTimedOut": state_machine.metric_timed_out(period=five_minutes, statistic="Sum"),
            "ExecutionsAborted": state_machine.metric_aborted(period=five_minutes, statistic="Sum"),
            "JanitorErrors": janitor.metric_errors(period=five_minutes, statistic="Sum"),
            "JanitorDeadLetters": janitor_dead_letters.metric_approximate_number_of_messages_visible(period=five_minutes, statistic="Maximum"),
        }
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, metric in metrics.items():
            alarm = metric.create_alarm(
                self, name, threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"vllm-coldstart snapshot pipeline: {name} >= 1 in 5 minutes (see the execution history)",
            )
            alarm.add_alarm_action(actions.SnsAction(self.topic))
            self.alarms[name] = alarm
