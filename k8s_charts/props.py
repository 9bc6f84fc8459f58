"""The resolved, validated values the charts render: one typed object per chart.

``resolve`` turns (config, published snapshot, deployment values) into ``GpuNodesProps`` and
``VllmProps``, raising ChartInputError for bad input and collecting notices (warnings a human
should read) for degraded but valid situations such as "no snapshot published yet".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from k8s_charts import inputs
from k8s_charts.image import choose_image
from k8s_charts.inputs import ChartInputError, config_field, fail
from k8s_charts.published import PublishedSnapshot
from settings import names
from settings.config import AppConfig
from settings.probe_timing import ProbeTiming

ECR_IMAGE = re.compile(r"\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/")
Identity = Literal["pod-identity", "irsa"]
IDENTITIES: tuple[str, ...] = ("pod-identity", "irsa")

# --- constants that are design choices, not config (see docs/manifests.md) ----------------------
OS_VOLUME_DEVICE = names.BUILDER_ROOT_DEVICE  # /dev/xvda: Bottlerocket OS volume
DATA_VOLUME_DEVICE = names.BUILDER_DATA_DEVICE  # /dev/xvdb: data volume (containerd images) = the snapshot
OS_VOLUME_SIZE = "4Gi"  # Bottlerocket's OS volume; Karpenter's own default for the family
# IMDSv2 only, and hop limit 1: pods in their own network namespace cannot reach IMDS and so cannot
# borrow the node role. vLLM gets AWS credentials from Pod Identity/IRSA, and its region from AWS_REGION.
IMDS_HOP_LIMIT = 1
# Kubelet image GC: the defaults (85/80) could delete the cached vLLM image while it is unused
# (e.g. between pods). GC starts only above 90% of the data volume and stops at 85%.
IMAGE_GC_HIGH_PERCENT = 90
IMAGE_GC_LOW_PERCENT = 85
# Bottlerocket mounts the data volume at /local; the compile cache lives there so it survives pods.
COMPILE_CACHE_HOST_PATH = "/local/vllm-cache"
VLLM_CACHE_ROOT = "/var/cache/vllm"  # in the container
VLLM_UID = 1000  # non-root; HOME points at a writable emptyDir
# The vllm/vllm-openai image has no passwd entry for VLLM_UID (tests/real/facts/vllm-openai-passwd.json):
# getpass.getuser() (torch) then raises unless USER/LOGNAME name the user.
VLLM_USER = "vllm"
# The compile-cache sync script (stdlib + boto3), shipped in a ConfigMap and run with the image's python3.
COMPILE_CACHE_SCRIPT = Path(__file__).resolve().parent / "runtime" / "compile_cache_sync.py"
# Label a namespace with this to let its pods reach vLLM (the NetworkPolicy admits it and vLLM's own namespace).
CLIENT_NAMESPACE_LABEL = "vllm-coldstart/vllm-client"


@dataclass(frozen=True)
class Probe:
    path: str
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int
    initial_delay_seconds: int = 0

    def check(self, name: str) -> Probe:
        for attr, lo in (("period_seconds", 1), ("timeout_seconds", 1), ("failure_threshold", 1), ("initial_delay_seconds", 0)):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= 2**31 - 1:
                raise fail(f"{name} probe {attr}", value, f"expected a whole number >= {lo} (Kubernetes int32)")
        if not self.path.startswith("/"):
            raise fail(f"{name} probe path", self.path, "expected an HTTP path starting with '/'")
        return self


@dataclass(frozen=True)
class Probes:
    """vLLM probe settings. The defaults reproduce the seed manifests; startup is derived from config."""

    startup: Probe
    readiness: Probe
    liveness: Probe

    @classmethod
    def from_config(cls, cfg: AppConfig) -> Probes:
        # The port refuses connections until the model is loaded and compiled; the startup probe
        # allows initialDelay + period x failureThreshold >= coldstart:startupBudgetSeconds.
        # Readiness and liveness only start once the startup probe has passed.
        ready, live = cfg.readinessProbe, cfg.livenessProbe
        return cls(
            startup=Probe("/v1/models", initial_delay_seconds=cfg.startupProbeInitialDelaySeconds,
                          period_seconds=cfg.startupProbePeriodSeconds, timeout_seconds=cfg.startupProbeTimeoutSeconds,
                          failure_threshold=cfg.startup_failure_threshold),
            readiness=Probe("/v1/models", period_seconds=ready.periodSeconds, timeout_seconds=ready.timeoutSeconds,
                            failure_threshold=ready.failureThreshold),
            liveness=Probe("/health", period_seconds=live.periodSeconds, timeout_seconds=live.timeoutSeconds,
                           failure_threshold=live.failureThreshold),
        )

    @property
    def startup_window_seconds(self) -> int:
        """The time kubelet surely gives the container before a startup-probe kill (settings.probe_timing)."""
        return ProbeTiming(self.startup.initial_delay_seconds, self.startup.period_seconds,
                           self.startup.failure_threshold, self.startup.timeout_seconds).guaranteed_s


@dataclass(frozen=True)
class GpuNodesProps:
    cluster_name: str
    node_role_name: str
    ami_alias: str
    snapshot_id: str | None
    data_volume_size_gib: int
    data_volume_iops: int
    data_volume_throughput: int
    volume_initialization_rate: int | None
    instance_families: tuple[str, ...]
    capacity_types: tuple[str, ...]
    architectures: tuple[str, ...]
    gpu_limit: int
    drift_budget_nodes: int
    imds_hop_limit: int = IMDS_HOP_LIMIT


@dataclass(frozen=True)
class VllmProps:
    namespace: str
    service_account: str
    identity: Identity
    role_arn: str | None
    image: str
    replicas: int
    model_uri: str
    served_model_name: str
    quantization: str
    max_model_len: int
    gpu_memory_utilization: float
    streamer_concurrency: int
    region: str
    probes: Probes
    compile_cache_on_node: bool
    # s3://<bucket>/compile-cache/<image key>/ when compileCacheS3 is on, else None.
    compile_cache_s3_uri: str | None = None
    compile_cache_publish: bool = False  # compileCachePublish == "pods": the publish sidecar runs
    compile_cache_max_bytes: int = 2 * 1024**3
    cpu_request: str = "3"
    memory_request: str = "12Gi"
    memory_limit: str = "14Gi"
    shm_size: str = "2Gi"

    @property
    def args(self) -> list[str]:
        """`vllm serve` arguments, in the seed's order."""
        args = [
            self.model_uri,
            "--served-model-name", self.served_model_name,
            "--port", str(names.VLLM_PORT),
            "--load-format", "runai_streamer",
            "--model-loader-extra-config", f'{{"concurrency":{self.streamer_concurrency}}}',
            "--max-model-len", str(self.max_model_len),
            "--gpu-memory-utilization", format(self.gpu_memory_utilization, "g"),
        ]
        if self.quantization != "auto":  # auto: vLLM detects the method (and its fastest kernel) itself
            args += ["--quantization", self.quantization]
        return args


@dataclass(frozen=True)
class ResolvedProps:
    gpu_nodes: GpuNodesProps
    vllm: VllmProps
    notices: tuple[str, ...] = field(default=())


def ami_alias(cfg: AppConfig, published: PublishedSnapshot | None, notices: list[str]) -> str:
    """``bottlerocket@v1.x.y`` of the snapshot's build, else the configured fallback."""
    if published is not None and published.bottlerocket_version:
        return f"bottlerocket@v{published.bottlerocket_version}"
    # Always a pinned version: bottlerocket@latest would drift every node at each Bottlerocket release.
    alias = f"bottlerocket@v{cfg.bottlerocketFallbackVersion.lstrip('v')}"
    if published is not None:
        notices.append(f"the Bottlerocket version snapshot {published.snapshot_id} was built with is unknown: nodes use "
                       f"{alias} (coldstart:bottlerocketFallbackVersion). Its containerd must be able to read the cached "
                       "images (containerd 1.7 -> 2.1 at Bottlerocket 1.58); republish metadata or pin the fallback.")
    return alias


def compile_cache_key(image: str) -> str:
    """The cache's key under compile-cache/: the image digest (``sha256-<hex>``) when the reference is
    pinned, else the reference with every character outside [A-Za-z0-9._-] replaced by '-'.

    vLLM's own directory names hash the GPU, versions and model config, so one key holds several."""
    match = re.search(r"@sha256:([a-f0-9]{64})$", image)
    if match:
        return f"sha256-{match.group(1)}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", image).strip("-")[:200]


def compile_cache_uri(model_uri: str, image: str) -> str:
    """``s3://<model bucket>/compile-cache/<key>/``: beside the model, in the same bucket."""
    bucket = model_uri.removeprefix("s3://").split("/", 1)[0]
    return f"s3://{bucket}/{names.COMPILE_CACHE_PREFIX}/{compile_cache_key(image)}/"


def model_uri_from(cfg: AppConfig, model_bucket: str | None, model_uri: str | None) -> str:
    if model_uri is not None:
        return inputs.check_model_uri(model_uri, "--model-uri")
    bucket = model_bucket if model_bucket is not None else cfg.modelBucketName
    if bucket is None:
        raise ChartInputError(
            "model bucket: not known; pass --model-bucket (standalone synth), set coldstart:modelBucketName, or deploy "
            f"the storage stack so its output {names.OUTPUT_BUCKET_NAME} can be read")
    inputs.check_bucket_name(bucket, "--model-bucket" if model_bucket is not None else config_field("modelBucketName"))
    return inputs.check_model_uri(f"s3://{bucket}/{cfg.modelPrefix}/", f"model URI (from the bucket and {config_field('modelPrefix')})")


def resolve(
    cfg: AppConfig,
    published: PublishedSnapshot | None,
    *,
    node_role_name: str,
    model_bucket: str | None = None,
    model_uri: str | None = None,
    account: str | None = None,
    region: str | None = None,
    identity: Identity = "pod-identity",
    vllm_role_arn: str | None = None,
    probes: Probes | None = None,
) -> ResolvedProps:
    notices: list[str] = []
    account = inputs.check_account(account if account is not None else cfg.account, "account")
    region = inputs.check_region(region if region is not None else cfg.region, "region")

    # --- snapshot and data volume ------------------------------------------------------------------
    snapshot_id = None
    rate = inputs.check_volume_initialization_rate(cfg.volumeInitializationRate)
    if published is None:
        notices.append("WARNING: no image-cache snapshot is published yet: the GPU nodes get an EMPTY data volume "
                       "(no snapshotID) and pull the vLLM image at every cold start. Run the snapshot pipeline, then "
                       "re-synthesize.")
        if rate is not None:
            notices.append(f"{config_field('volumeInitializationRate')}={rate} is left out: it requires a snapshotID")
            rate = None
    else:
        snapshot_id = inputs.check_snapshot_id(published.snapshot_id, f"snapshot ID ({published.source})")
        notices.extend(published.notes)
        snapshot_size = published.volume_size_gib or cfg.dataVolumeSizeGiB
        source = (f"volumeSizeGiB in {published.metadata_source}" if published.volume_size_gib
                  else f"built with {config_field('dataVolumeSizeGiB')}")
        inputs.check_data_volume_size(cfg.nodeDataVolumeSizeGiB, snapshot_size, source)
        if published.kubernetes_version and published.kubernetes_version != cfg.kubernetesVersion:
            notices.append(f"snapshot {snapshot_id} was built for Kubernetes {published.kubernetes_version}, the cluster "
                           f"runs {cfg.kubernetesVersion}: rebuild the snapshot so the Bottlerocket variants match")
        missing = sorted(set(cfg.imagePlatforms) - set(published.platforms)) if published.platforms else []
        if missing:
            notices.append(f"snapshot {snapshot_id} holds images for {list(published.platforms)}, not {missing}: nodes of "
                           "those architectures pull the image")

    gpu_nodes = GpuNodesProps(
        cluster_name=cfg.clusterName,
        node_role_name=inputs.check_role_name(node_role_name, "Karpenter node role name"),
        ami_alias=ami_alias(cfg, published, notices),
        snapshot_id=snapshot_id,
        data_volume_size_gib=cfg.nodeDataVolumeSizeGiB,
        data_volume_iops=cfg.nodeDataVolumeIops,
        data_volume_throughput=cfg.nodeDataVolumeThroughput,
        volume_initialization_rate=rate,
        instance_families=inputs.check_instance_families(cfg.gpuInstanceFamilies),
        capacity_types=inputs.check_capacity_types(cfg.gpuCapacityTypes),
        architectures=tuple(cfg.imagePlatforms),
        gpu_limit=cfg.gpuLimit,
        drift_budget_nodes=cfg.driftBudgetNodes,
    )

    # --- identity ----------------------------------------------------------------------------------
    if identity not in IDENTITIES:
        raise fail("identity", identity, f"expected one of {', '.join(IDENTITIES)}")
    if identity == "irsa":
        if vllm_role_arn is None:
            raise ChartInputError(f"vLLM role ARN: required with identity 'irsa' (the {names.OUTPUT_VLLM_ROLE_ARN} output "
                                  "of the cluster stack); pass --vllm-role-arn, or use identity 'pod-identity'")
        inputs.check_role_arn(vllm_role_arn, "vLLM role ARN")
    elif vllm_role_arn is not None:
        raise fail("vLLM role ARN", vllm_role_arn, "identity 'pod-identity' binds the role through an EKS Pod Identity "
                                                   "association, not an annotation; drop the ARN or choose identity 'irsa'")

    probes = probes or Probes.from_config(cfg)
    for name in ("startup", "readiness", "liveness"):
        getattr(probes, name).check(name)
    if probes.startup_window_seconds < cfg.startupBudgetSeconds:
        notices.append(f"the startup probe allows {probes.startup_window_seconds}s, less than "
                       f"{config_field('startupBudgetSeconds')}={cfg.startupBudgetSeconds}s: slow cold starts get restarted")

    image = choose_image(cfg, published, account, region)
    notices.extend(image.notes)
    if region is None:
        # A pinned private-ECR image names its region.
        ecr = ECR_IMAGE.match(image.reference)
        region = ecr.group("region") if ecr else None
    if region is None:
        # Without AWS_REGION the streamer's S3 client asks IMDS, which hop limit 1 blocks, then
        # falls back to us-east-1: the model load fails (or crosses regions). Never guess one.
        raise ChartInputError(
            "region: not known; the vLLM pod needs AWS_REGION for the model bucket. Pass --region (standalone "
            f"synth), set {config_field('region')}, or configure the AWS SDK's region (AWS_REGION)")
    model_uri = model_uri_from(cfg, model_bucket, model_uri)
    if cfg.compileCacheS3 and not image.pinned:
        notices.append(f"the compile cache is keyed by the image tag ({compile_cache_key(image.reference)}), not a digest: "
                       "a tag moved to another build shares a cache compiled by a different vLLM; publish a snapshot to pin it")
    vllm = VllmProps(
        namespace=cfg.vllmNamespace,
        service_account=cfg.vllmServiceAccount,
        identity=identity,
        role_arn=vllm_role_arn if identity == "irsa" else None,
        image=image.reference,
        replicas=cfg.vllmReplicas,
        model_uri=model_uri,
        served_model_name=cfg.servedModelName,
        quantization=cfg.quantization,
        max_model_len=cfg.maxModelLen,
        gpu_memory_utilization=cfg.gpuMemoryUtilization,
        streamer_concurrency=cfg.streamerConcurrency,
        region=region,
        probes=probes,
        compile_cache_on_node=cfg.compileCacheOnNode,
        compile_cache_s3_uri=compile_cache_uri(model_uri, image.reference) if cfg.compileCacheS3 else None,
        compile_cache_publish=cfg.compileCacheS3 and cfg.compileCachePublish == "pods",
        compile_cache_max_bytes=cfg.compileCacheMaxBytes,
    )
    return ResolvedProps(gpu_nodes=gpu_nodes, vllm=vllm, notices=tuple(notices))
