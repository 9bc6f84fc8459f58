"""Error names the state machine routes on.

A Lambda error's name in Step Functions is the exception's class name, so each class here is the
contract between a handler and the definition's Retry/Catch policy (stacks/pipeline/state_machine.py
imports these classes). Messages name the input or resource, the value and the fix.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: every error a step raises on purpose."""


class InputValidationError(PipelineError):
    """The execution input or the stack config is unusable. Raised by the first state; nothing is launched."""


class CudaDriverIncompatible(InputValidationError):
    """The vLLM image needs a newer CUDA than the NVIDIA driver of the pinned Bottlerocket variant runs (first state)."""


class AwsThrottled(PipelineError):
    """An AWS API throttled the call (retried by the state machine with backoff and jitter)."""


class AwsTransient(PipelineError):
    """An AWS API failed in a way that usually clears on retry (5xx, timeouts)."""


class AwsCallFailed(PipelineError):
    """An AWS API refused the call for a reason a retry will not fix (permissions, bad request)."""


class InsufficientCapacity(PipelineError):
    """No subnet/AZ had capacity for the builder instance type (retried with a long backoff)."""


class BuilderLost(PipelineError):
    """The builder instance stopped, terminated or vanished while the pipeline still needed it."""


class PullCommandFailed(PipelineError):
    """The SSM command that pulls the images ended Failed, TimedOut, Cancelled or DeliveryTimedOut."""


# Named failures of the pull document (its ``COLDSTART-ERROR <Name>`` line, or ctr's message for a pull).
class AdminContainerNotReady(PullCommandFailed):
    """``apiclient exec admin`` kept failing: the admin host container never started (user data)."""


class DataVolumeNotMounted(PullCommandFailed):
    """containerd's root is not on the EBS data volume the pipeline snapshots: the snapshot would be empty."""


class EcrCredentialUnavailable(PullCommandFailed):
    """The host's kubelet ECR credential provider gave no password (instance role, registry name)."""


class ImagePullFailed(PullCommandFailed):
    """ctr could not pull an image for a reason not named more precisely below."""


class RegistryAuthFailed(ImagePullFailed):
    """The registry refused the credential (401/403)."""


class ImageNotFound(ImagePullFailed):
    """The registry has no such manifest or blob (deleted tag, lost layer, wrong digest)."""


class RegistryUnreachable(ImagePullFailed):
    """The registry could not be reached (connection refused, DNS, no route: VPC endpoints or NAT)."""


class ImageVerificationFailed(PipelineError):
    """The pull command succeeded but its verification lines do not show every image pulled and pinned."""


class SnapshotFailed(PipelineError):
    """EBS reported the snapshot in state `error`."""


class CleanupIncomplete(PipelineError):
    """Builder resources of the execution still exist after cleanup (the janitor retries)."""


# Errors raised by the state machine itself (Pass + Fail states), not by a Lambda.
BUILDER_ONLINE_TIMEOUT = "BuilderOnlineTimeout"
PULL_TIMEOUT = "PullCommandTimeout"
STOP_TIMEOUT = "BuilderStopTimeout"
SNAPSHOT_TIMEOUT = "SnapshotTimeout"
PIPELINE_BUSY_TIMEOUT = "PipelineBusyTimeout"
CLEANUP_TIMEOUT = "CleanupTimeout"

# Retried by the state machine: throttling and transient service errors (ours and Lambda's own).
TRANSIENT_ERRORS = (
    AwsThrottled.__name__,
    AwsTransient.__name__,
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
