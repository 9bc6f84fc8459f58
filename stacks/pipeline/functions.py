"""The pipeline's Lambda functions: one asset, one role per function with only the actions it needs.

Mutating EC2 actions are scoped by the pipeline's tags (``aws:RequestTag`` when creating,
``aws:ResourceTag`` when changing or deleting); describe actions cannot be scoped and use ``*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, Fn, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.snapshot_pipeline.core.defaults import PipelineDefaults
from settings import names
from stacks.nag import acknowledge, acknowledge_findings, nag_resource

from .builder_infra import BuilderInfra

REPO_ROOT = Path(__file__).resolve().parents[2]
# The asset is the repo root filtered to the two packages the handlers import: their own code and
# the bottom layer (settings: names, config, versions), so both run under the same import paths as in tests.
ASSET_PACKAGES = ("lambdas", "settings")
ASSET_EXCLUDE = ["*", *(f"!{p}" for p in ASSET_PACKAGES), "**/__pycache__", "**/*.pyc", "**/.pytest_cache"]
HANDLER_PACKAGE = "lambdas.snapshot_pipeline.handlers"
# Public Powertools for AWS Lambda (Python) v3 layer (AWS account 017000801446). Any v3 layer runs
# these handlers (Logger/Tracer/Metrics only); the pin matches the tested 3.x line, confirm with
# `aws lambda list-layer-versions --layer-name AWSLambdaPowertoolsPythonV3-python312-arm64`.
POWERTOOLS_LAYER_VERSION = 27
POWERTOOLS_LAYER = (
    "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:"
    f"{POWERTOOLS_LAYER_VERSION}"
)
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64  # must match the layer's -arm64 suffix

# step -> (timeout seconds, description)
STEPS: dict[str, tuple[int, str]] = {
    "resolve_input": (60, "validate input, resolve image digests and the Bottlerocket AMI"),
    "gate": (30, "one build at a time; skip superseded and already-published builds"),
    "launch_builder": (60, "launch the Bottlerocket builder instance"),
    "check_online": (30, "is the builder's SSM agent online"),
    "start_pull": (30, "send the image pull command"),
    "check_pull": (30, "status of the pull command"),
    "verify_images": (30, "parse the pull command's verification lines"),
    "stop_builder": (30, "stop the builder before the snapshot"),
    "check_stopped": (30, "is the builder stopped"),
    "create_snapshot": (30, "snapshot the builder's data volume"),
    "check_snapshot": (30, "snapshot state"),
    "publish": (60, "write the metadata and snapshot ID parameters; Fast Snapshot Restore"),
    "cleanup": (60, "terminate the builder, delete its volumes and unpublished snapshots"),
    "retention": (120, "delete old pipeline snapshots beyond the retention count"),
    "janitor": (120, "clean up after executions that aborted, timed out or failed"),
}


@dataclass(frozen=True)
class Arns:
    """ARNs the policies are scoped to (tokens resolved at deploy time)."""

    instance: str
    volume: str
    network_interface: str
    snapshot: str
    image: str
    parameter: str
    metadata_parameter: str
    bottlerocket_parameters: str
    repositories: str
    document: str
    state_machine: str
    executions: str  # every execution of the state machine: arn:...:execution:<state machine name>:*


class PipelineFunctions(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, defaults: PipelineDefaults, builder: BuilderInfra,
                 state_machine_arn: str, executions_arn: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.defaults = defaults
        self.builder = builder
        param = defaults.snapshotParameterName.lstrip("/")
        self.arns = Arns(
            instance=stack.format_arn(service="ec2", resource="instance", resource_name="*"),
            volume=stack.format_arn(service="ec2", resource="volume", resource_name="*"),
            network_interface=stack.format_arn(service="ec2", resource="network-interface", resource_name="*"),
            snapshot=stack.format_arn(service="ec2", account="", resource="snapshot", resource_name="*"),
            image=stack.format_arn(service="ec2", account="", resource="image", resource_name="*"),
            parameter=stack.format_arn(service="ssm", resource="parameter", resource_name=param),
            metadata_parameter=stack.format_arn(service="ssm", resource="parameter", resource_name=names.metadata_parameter_name(param)),
            bottlerocket_parameters=stack.format_arn(service="ssm", account="", resource="parameter", resource_name="aws/service/bottlerocket/*"),
            repositories=stack.format_arn(service="ecr", resource="repository", resource_name="*"),
            document=stack.format_arn(service="ssm", resource="document", resource_name=defaults.pull_document_name),
            state_machine=state_machine_arn,
            executions=executions_arn,
        )
        code = lambda_.Code.from_asset(str(REPO_ROOT), ignore_mode=IgnoreMode.DOCKER, exclude=ASSET_EXCLUDE)
        layer = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", Fn.sub(POWERTOOLS_LAYER))
        self.functions: dict[str, lambda_.Function] = {}
        self._resources: dict[str, set[str]] = {}
        for step, (timeout, description) in STEPS.items():
            self.functions[step] = self._function(step, timeout, description, code, layer)
        self._grant()

    # --- functions ---------------------------------------------------------------------------
    def _function(self, step: str, timeout: int, description: str, code: lambda_.Code, layer: lambda_.ILayerVersion) -> lambda_.Function:
        scope = Construct(self, step.title().replace("_", ""))
        log_group = logs.LogGroup(scope, "Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"vllm-coldstart pipeline step {step}")
        environment = {
            names.ENV_PIPELINE_CONFIG: self.defaults.to_json(),
            names.ENV_POWERTOOLS_SERVICE: names.SERVICE_NAME,
            names.ENV_METRICS_NAMESPACE: names.METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        if step == "launch_builder":
            environment.update(
                {
                    names.ENV_BUILDER_SUBNET_IDS: Fn.join(",", self.builder.subnets.subnet_ids),
                    names.ENV_BUILDER_SECURITY_GROUP_ID: self.builder.security_group.security_group_id,
                    names.ENV_BUILDER_INSTANCE_PROFILE_ARN: self.builder.instance_profile.instance_profile_arn,
                }
            )
        fn = lambda_.Function(
            scope, "Function", runtime=RUNTIME, architecture=ARCHITECTURE, code=code,
            handler=f"{HANDLER_PACKAGE}.{step}.handler", timeout=Duration.seconds(timeout), memory_size=256,
            description=f"vllm-coldstart pipeline: {description}", role=role, log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE, layers=[layer], environment=environment,
        )
        log_group.grant_write(role)
        acknowledge_findings(
            role, "AwsSolutions-IAM5", [f"Resource::{nag_resource(role, log_group.log_group_arn)}:*", "Resource::*"],
            "Log streams are created at run time inside this function's own log group (hence :*); the only '*' resources "
            "are X-Ray segments and EC2/SSM describe/read calls, which AWS does not scope to resources.",
        )
        acknowledge(
            fn, "AwsSolutions-L1",
            "Pinned to python3.12 to match the public Powertools v3 python312 layer these handlers are tested with; "
            "move runtime and layer together.",
        )
        return fn

    # --- permissions -------------------------------------------------------------------------
    def _tags(self, kind: str) -> dict[str, dict[str, str]]:
        """StringEquals condition on the pipeline's tags: kind is aws:RequestTag or aws:ResourceTag."""
        return {"StringEquals": {f"{kind}/{names.TAG_MANAGED_BY}": names.MANAGED_BY_VALUE,
                                 f"{kind}/{names.TAG_PIPELINE}": self.defaults.pipelineName}}

    def _allow(self, step: str, actions: list[str], resources: list[str], conditions: dict | None = None) -> None:
        self._resources.setdefault(step, set()).update(resources)
        self.functions[step].add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))

    def _grant(self) -> None:
        a = self.arns
        resource_tagged = self._tags("aws:ResourceTag")
        request_tagged = self._tags("aws:RequestTag")
        params = [a.parameter, a.metadata_parameter]

        self._allow("resolve_input", ["ssm:GetParameter"], [a.bottlerocket_parameters])
        # the CUDA gate reads the vLLM image's manifest and config blob (pre-signed URL) by digest; no registry credential
        self._allow("resolve_input", ["ecr:DescribeImages", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [a.repositories])

        self._allow("gate", ["states:ListExecutions"], [a.state_machine])
        # Reads a newer execution's input: only a newer ECR push supersedes an ECR-triggered run.
        self._allow("gate", ["states:DescribeExecution"], [a.executions])
        self._allow("gate", ["ssm:GetParameter"], params)

        # RunInstances: what it creates must carry the pipeline's tags; what it uses is named.
        self._allow("launch_builder", ["ec2:RunInstances"], [a.instance, a.volume, a.network_interface], request_tagged)
        subnet_arns = [Stack.of(self).format_arn(service="ec2", resource="subnet", resource_name=s) for s in self.builder.subnets.subnet_ids]
        sg_arn = Stack.of(self).format_arn(service="ec2", resource="security-group", resource_name=self.builder.security_group.security_group_id)
        self._allow("launch_builder", ["ec2:RunInstances"], [a.image, sg_arn, *subnet_arns])
        self._allow("launch_builder", ["ec2:CreateTags"], [a.instance, a.volume, a.network_interface],
                    {"StringEquals": {"ec2:CreateAction": "RunInstances"}})
        self._allow("launch_builder", ["ec2:DescribeImages", "ec2:DescribeInstances"], ["*"])
        self.functions["launch_builder"].add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.builder.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))

        self._allow("check_online", ["ssm:DescribeInstanceInformation", "ec2:DescribeInstances"], ["*"])

        # Only the pipeline's own document (fixed script, data parameters checked by allowedPattern; see
        # stacks/pipeline/pull_document.py), never AWS-RunShellScript: this role cannot run arbitrary shell.
        self._allow("start_pull", ["ec2:DescribeInstances"], ["*"])  # the data volume ID the script checks /local against
        self._allow("start_pull", ["ssm:SendCommand"], [a.document])
        self._allow("start_pull", ["ssm:SendCommand"], [a.instance],
                    {"StringEquals": {f"ssm:resourceTag/{names.TAG_MANAGED_BY}": names.MANAGED_BY_VALUE,
                                      f"ssm:resourceTag/{names.TAG_PIPELINE}": self.defaults.pipelineName}})
        for step in ("check_pull", "verify_images"):
            self._allow(step, ["ssm:GetCommandInvocation"], ["*"])

        self._allow("stop_builder", ["ec2:StopInstances"], [a.instance], resource_tagged)
        self._allow("check_stopped", ["ec2:DescribeInstances"], ["*"])

        self._allow("create_snapshot", ["ec2:CreateSnapshot"], [a.volume], resource_tagged)
        self._allow("create_snapshot", ["ec2:CreateSnapshot"], [a.snapshot], request_tagged)
        self._allow("create_snapshot", ["ec2:CreateTags"], [a.snapshot], {"StringEquals": {"ec2:CreateAction": "CreateSnapshot"}})
        self._allow("create_snapshot", ["ec2:DescribeInstances"], ["*"])
        self._allow("check_snapshot", ["ec2:DescribeSnapshots"], ["*"])

        self._allow("publish", ["ssm:GetParameter", "ssm:PutParameter"], params)
        # Undo of a first metadata write when the ID write then fails (publish._restore_metadata).
        self._allow("publish", ["ssm:DeleteParameter"], [a.metadata_parameter])
        self._allow("publish", ["ec2:EnableFastSnapshotRestores", "ec2:DisableFastSnapshotRestores"], [a.snapshot], resource_tagged)
        self._allow("publish", ["ec2:DescribeFastSnapshotRestores"], ["*"])

        for step in ("cleanup", "janitor"):
            self._allow(step, ["ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"], ["*"])
            self._allow(step, ["ec2:TerminateInstances"], [a.instance], resource_tagged)
            self._allow(step, ["ec2:DeleteVolume"], [a.volume], resource_tagged)
            self._allow(step, ["ec2:DeleteSnapshot"], [a.snapshot], resource_tagged)
            self._allow(step, ["ssm:GetParameter", "ssm:GetParameterHistory"], [a.parameter])

        self._allow("retention", ["ec2:DescribeSnapshots"], ["*"])
        self._allow("retention", ["ec2:DeleteSnapshot"], [a.snapshot], resource_tagged)
        self._allow("retention", ["ssm:GetParameter", "ssm:GetParameterHistory"], [a.parameter])
        # The rollback target skips snapshots an operator rolled back FROM; those markers live in the
        # metadata parameter's history (retention.rolled_away_from).
        self._allow("retention", ["ssm:GetParameterHistory"], [a.metadata_parameter])

        self._acknowledge_scoped_wildcards()

    def _acknowledge_scoped_wildcards(self) -> None:
        """Each remaining wildcard ARN is paired with a tag condition (or is a public/AWS-owned resource)."""
        a = self.arns
        reasons = {
            a.instance: "instance IDs are not known before launch; every statement on instance/* requires the pipeline's tags",
            a.volume: "builder volumes are created at run time; every statement on volume/* requires the pipeline's tags",
            a.network_interface: "the builder's ENI is created by RunInstances and must carry the pipeline's tags",
            a.snapshot: "snapshots are created at run time; create requires and change/delete require the pipeline's tags",
            a.image: "the Bottlerocket AMI ID changes with each release (public, AWS-owned AMIs read from SSM)",
            a.bottlerocket_parameters: "public AWS parameters for the Bottlerocket AMI of any Kubernetes version (read-only)",
            a.repositories: "the execution input may name any ECR repository of this account; DescribeImages is read-only",
            a.executions: "execution names are generated at start; DescribeExecution (read-only) on this state machine's executions only",
        }
        for step, fn in self.functions.items():
            for arn, reason in reasons.items():
                if arn in self._resources.get(step, set()) and fn.role is not None:
                    acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{nag_resource(fn, arn)}]", f"Step {step}: {reason}.")
