"""The snapshot pipeline stack: builder infrastructure, Lambda steps, the state machine, triggers, alarms."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.snapshot_pipeline.core.defaults import PipelineDefaults
from settings import names
from settings.config import AppConfig
from stacks.nag import acknowledge

from .pipeline.alarms import PipelineAlarms
from .pipeline.builder_infra import BuilderInfra
from .pipeline.functions import PipelineFunctions
from .pipeline.pull_document import PullDocument
from .pipeline.state_machine import SnapshotPipelineDefinition
from .pipeline.triggers import PipelineTriggers


def pipeline_defaults(config: AppConfig, pipeline_name: str) -> PipelineDefaults:
    """The handlers' settings: the config's pipeline keys, plus the pipeline's tag value."""
    return PipelineDefaults.from_settings(config, pipeline_name)


class PipelineStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        defaults = pipeline_defaults(config, self.stack_name)
        # A fixed name lets the gate's policy name the state machine's ARN without a dependency cycle
        # (state machine -> functions -> their policies -> state machine).
        state_machine_name = f"{self.stack_name}-snapshot"
        state_machine_arn = self.format_arn(service="states", resource="stateMachine", resource_name=state_machine_name,
                                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        executions_arn = self.format_arn(service="states", resource="execution", resource_name=f"{state_machine_name}:*",
                                         arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)

        builder = BuilderInfra(self, "Builder", vpc=vpc)
        pull_document = PullDocument(self, "PullDocument", pipeline_name=defaults.pipelineName)
        functions = PipelineFunctions(self, "Steps", defaults=defaults, builder=builder, state_machine_arn=state_machine_arn,
                                      executions_arn=executions_arn)
        functions.functions["start_pull"].node.add_dependency(pull_document.document)
        definition = SnapshotPipelineDefinition(self, "Definition", fns=functions.functions)

        log_group = logs.LogGroup(self, "StateMachineLogs", retention=logs.RetentionDays.SIX_MONTHS,
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine", state_machine_name=state_machine_name, state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition.start),
            timeout=cdk.Duration.seconds(defaults.execution_timeout_seconds), tracing_enabled=True,
            # ERROR, without execution data: failures (error name and cause) are logged; step inputs and
            # outputs are not persisted, so a future leak into a state (e.g. the pull command's stderr
            # tail) cannot end up in a 6-month log. Full per-state data stays in the execution history
            # (90 days, IAM-protected) and X-Ray.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ERROR, include_execution_data=False),
            comment="vllm-coldstart: build, publish and retain the Bottlerocket image-cache snapshot",
        )
        acknowledge(
            self.state_machine, "AwsSolutions-SF1",
            "Logging is ERROR without execution data on purpose: states may carry command output, which must not be kept "
            "for months; every failure is still logged and the execution history keeps each state's data for 90 days.",
        )
        triggers = PipelineTriggers(self, "Triggers", state_machine=self.state_machine, state_machine_arn=state_machine_arn,
                         janitor=functions.functions["janitor"], repository=config.vllmRepository,
                         tag_pattern=config.ecrTriggerTagPattern, schedule=config.scheduleExpression)
        PipelineAlarms(self, "Alarms", state_machine=self.state_machine, janitor=functions.functions["janitor"],
                       janitor_dead_letters=triggers.janitor_dead_letters, email=config.alarmEmail)
        self._acknowledge_state_machine_role(list(functions.functions.values()))
        cdk.CfnOutput(self, names.OUTPUT_STATE_MACHINE_ARN, value=self.state_machine.state_machine_arn,
                      description="Snapshot pipeline state machine (start with input {} to rebuild with the defaults)")

    def _acknowledge_state_machine_role(self, fns: list[Any]) -> None:
        from stacks.nag import acknowledge_findings, nag_resource

        role = self.state_machine.role
        acknowledge_findings(
            role, "AwsSolutions-IAM5", [f"Resource::{nag_resource(role, fn.function_arn)}:*" for fn in fns],
            "CDK grants the state machine lambda:InvokeFunction on each step function's ARN and ARN:* (its versions and "
            "aliases); the functions are named, only their qualifiers are wildcards.",
        )
        acknowledge_findings(
            role, "AwsSolutions-IAM5", ["Resource::*"],
            "X-Ray tracing and CloudWatch Logs delivery actions for the state machine's own logging do not support "
            "resource-level permissions (AWS documents Resource '*' for them).",
        )
