"""Names shared by stacks, charts, the CLI and tests. Pipeline names are defined once in
``lambdas/snapshot_pipeline/names.py`` (they ship inside the Lambda asset) and re-exported here."""

from lambdas.snapshot_pipeline.names import *  # noqa: F403  (re-export: one definition per name)
from lambdas.snapshot_pipeline.names import (  # noqa: F401  (explicit for type checkers and readers)
    DISCOVERY_TAG,
    TAG_MANAGED_BY,
    metadata_parameter_name,
)

# Stack IDs (CloudFormation stack names) — the Makefile and the CLI use the same names.
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

# Kubernetes
GPU_NODEPOOL = "gpu"
GPU_NODECLASS = "gpu-bottlerocket"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"
KARPENTER_SERVICE_ACCOUNT = "karpenter"
VLLM_APP_LABEL = "vllm"
VLLM_PORT = 8000

# Compile cache shared through S3 (k8s_charts/runtime/compile_cache_sync.py; docs/compile-cache.md).
# Everything lives under s3://<model bucket>/<COMPILE_CACHE_PREFIX>/<image key>/; the vLLM role may write
# only there (compileCachePublish=pods), the writer role of `coldstart warm-cache` likewise (readonly).
COMPILE_CACHE_PREFIX = "compile-cache"
COMPILE_CACHE_RESTORE_CONTAINER = "compile-cache-restore"
COMPILE_CACHE_PUBLISH_CONTAINER = "compile-cache-publish"
COMPILE_CACHE_WRITER_SERVICE_ACCOUNT = "vllm-cache-writer"
WARM_CACHE_APP_LABEL = "vllm-warm-cache"
