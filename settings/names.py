"""Names shared by the CDK stacks, the pipeline handlers, the charts, the CLI and the tests: each defined once.

This module ships inside the Lambda asset (with the rest of ``settings``), so it imports nothing
but the standard library.
"""

from __future__ import annotations

# --- Tags ------------------------------------------------------------------------------------
# Every resource the pipeline creates carries TAG_MANAGED_BY=MANAGED_BY_VALUE plus the
# pipeline name and the execution ARN. IAM conditions and the janitor key on these tags.
TAG_MANAGED_BY = "vllm-coldstart:managed-by"
MANAGED_BY_VALUE = "snapshot-pipeline"
TAG_PIPELINE = "vllm-coldstart:pipeline"
TAG_EXECUTION = "vllm-coldstart:execution"
TAG_ROLE = "vllm-coldstart:role"  # builder-instance | builder-volume | image-cache-snapshot
TAG_IMAGES = "vllm-coldstart:images"
TAG_DIGESTS = "vllm-coldstart:digests"
TAG_BOTTLEROCKET_VERSION = "vllm-coldstart:bottlerocket-version"
TAG_KUBERNETES_VERSION = "vllm-coldstart:kubernetes-version"
TAG_CREATED_AT = "vllm-coldstart:created-at"

ROLE_BUILDER_INSTANCE = "builder-instance"
ROLE_BUILDER_VOLUME = "builder-volume"
ROLE_SNAPSHOT = "image-cache-snapshot"

# Karpenter discovers subnets and security groups by this tag (value = cluster name).
DISCOVERY_TAG = "karpenter.sh/discovery"

# --- Environment variables of the pipeline Lambdas ------------------------------------------
ENV_PIPELINE_CONFIG = "PIPELINE_CONFIG"  # JSON of PipelineDefaults, set by the stack
ENV_POWERTOOLS_SERVICE = "POWERTOOLS_SERVICE_NAME"
ENV_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"

METRICS_NAMESPACE = "VllmColdstart"
SERVICE_NAME = "snapshot-pipeline"

# --- Parameter Store ---------------------------------------------------------------------------
DEFAULT_SNAPSHOT_PARAMETER = "/vllm-coldstart/snapshot-id"


# Key in the metadata JSON that marks a rollback: {"rollback": {"from": "<snap id>", "at": ..., "by": ...}}
METADATA_ROLLBACK_KEY = "rollback"


def metadata_parameter_name(snapshot_parameter: str) -> str:
    """The JSON parameter published beside the snapshot ID (Bottlerocket version, digests)."""
    return f"{snapshot_parameter}/metadata"


# --- Bottlerocket -----------------------------------------------------------------------------
def bottlerocket_ami_parameter(kubernetes_version: str, arch: str = "x86_64") -> str:
    """Public SSM parameter holding the latest standard (non-NVIDIA) Bottlerocket AMI ID.

    The builder uses the standard variant: the NVIDIA variant does not register with SSM on a
    non-GPU instance, and both variants of one release ship the same containerd.
    """
    return f"/aws/service/bottlerocket/aws-k8s-{kubernetes_version}/{arch}/latest/image_id"


def bottlerocket_version_parameter(kubernetes_version: str, arch: str = "x86_64") -> str:
    return f"/aws/service/bottlerocket/aws-k8s-{kubernetes_version}/{arch}/latest/image_version"


PLATFORM_TO_ARCH = {"amd64": "x86_64", "arm64": "arm64"}

# The builder's data volume: containerd's image store lives here on Bottlerocket.
BUILDER_ROOT_DEVICE = "/dev/xvda"
BUILDER_DATA_DEVICE = "/dev/xvdb"

# --- Builder launch (env vars of the launch function only; values are deploy-time resource IDs) ---
ENV_BUILDER_SUBNET_IDS = "BUILDER_SUBNET_IDS"  # comma-separated private subnet IDs
ENV_BUILDER_SECURITY_GROUP_ID = "BUILDER_SECURITY_GROUP_ID"
ENV_BUILDER_INSTANCE_PROFILE_ARN = "BUILDER_INSTANCE_PROFILE_ARN"


def pull_document_name(pipeline_name: str) -> str:
    """The pipeline's own SSM Command document (fixed pull script, data parameters; see pull_script.py).

    Named after the pipeline (the stack name), so the start_pull role and handler know it without a lookup.
    """
    return f"{pipeline_name}-PullImages"


# containerd labels: CRI lists the image (managed) and kubelet's image GC skips it (pinned).
CRI_MANAGED_LABEL = "io.cri-containerd.image=managed"
CRI_PINNED_LABEL = "io.cri-containerd.pinned=pinned"
CONTAINERD_NAMESPACE = "k8s.io"

# Lines the pull script prints and the verify step parses (machine-readable, one per image).
VERIFY_LINE_PREFIX = "COLDSTART-VERIFY"

# --- Execution input -----------------------------------------------------------------------------
# Keys an execution input may carry; `{}` (console) means "defaults from the stack config".
INPUT_KEYS = ("images", "platforms", "kubernetesVersion", "force", "imageDigest", "imageTag", "repositoryName", "trigger")
TRIGGER_ECR = "ecr"
TRIGGER_SCHEDULE = "schedule"
TRIGGER_MANUAL = "manual"


# --- Stack IDs (CloudFormation stack names) --- the Makefile and the CLI use the same names.
STORAGE_STACK = "VllmColdstartStorage"
CLUSTER_STACK = "VllmColdstartCluster"
PIPELINE_STACK = "VllmColdstartPipeline"

# Cross-stack export (storage -> cluster)
EXPORT_MODEL_BUCKET_ARN = f"{STORAGE_STACK}-ModelBucketArn"

# CloudFormation outputs the CLI reads (stack -> output key).
OUTPUT_BUCKET_NAME = "ModelBucketName"
OUTPUT_KARPENTER_NODE_ROLE = "KarpenterNodeRoleName"
OUTPUT_VLLM_ROLE_ARN = "VllmModelReadRoleArn"
OUTPUT_STATE_MACHINE_ARN = "SnapshotStateMachineArn"
OUTPUT_CLUSTER_NAME = "ClusterName"
OUTPUT_KUBECONFIG_COMMAND = "KubeconfigCommand"
OUTPUT_CHAT_REPOSITORY_URI = "ChatRepositoryUri"

# Kubernetes
GPU_NODEPOOL = "gpu"
GPU_NODECLASS = "gpu-bottlerocket"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
VLLM_APP_LABEL = "vllm"
VLLM_PORT = 8000
# The demo chat app (apps/chat): its container listens on CHAT_PORT, its ClusterIP Service on CHAT_SERVICE_PORT.
CHAT_APP_LABEL = "chat"
CHAT_PORT = 8080
CHAT_SERVICE_PORT = 80
CHAT_IMAGE_TAG_PREFIX = "git-"  # make build-push-images tags git-<short SHA>

# Compile cache shared through S3 (k8s_charts/runtime/compile_cache_sync.py; docs/compile-cache.md).
# Everything lives under s3://<model bucket>/<COMPILE_CACHE_PREFIX>/<image key>/; the vLLM role may write
# only there (compileCachePublish=pods), the writer role of `coldstart warm-cache` likewise (readonly).
COMPILE_CACHE_PREFIX = "compile-cache"
COMPILE_CACHE_RESTORE_CONTAINER = "compile-cache-restore"
COMPILE_CACHE_PUBLISH_CONTAINER = "compile-cache-publish"
COMPILE_CACHE_WRITER_SERVICE_ACCOUNT = "vllm-cache-writer"
WARM_CACHE_APP_LABEL = "vllm-warm-cache"

# --- Exit statuses ---------------------------------------------------------------------------
# Bad input (an invalid flag, a -c key or value, a config value): argparse's and click's usage status,
# shared by app.py (`cdk synth`), k8s_charts.synth and the operator CLI.
EXIT_BAD_INPUT = 2
