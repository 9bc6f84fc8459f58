"""The project's configuration: each key declared once, as a typed field below, with its parser and doc;
its default lives in ``cdk.json`` context (prefix ``coldstart:``, e.g. ``coldstart:clusterName``).

``cdk synth -c coldstart:clusterName=prod`` overrides one. Adding a key = one field here + its default
in cdk.json (tests/stacks/test_config.py checks both sides agree). ``PipelineSettings`` holds the keys
the snapshot pipeline's handlers read at run time; ``AppConfig`` extends it with everything else, so
the stack serialises the pipeline's part of the one resolved config and the handlers parse it back
with the same parsers.

A bad, missing or unknown key raises ``ConfigError`` naming the key, the value and what is allowed,
before any construct is created.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from settings import names, versions
from settings.parsers import (  # noqa: F401  (re-exported: the public vocabulary of config values)
    DNS_LABEL,
    IMAGE_REF,
    INSTANCE_FAMILY,
    K8S_VERSION,
    PREFIX,
    QUANTIZATIONS,
    S3_PREFIX,
    SSM_PARAMETER,
    ConfigError,
    Parser,
    ProbeSettings,
    boolean,
    bottlerocket_version,
    choice,
    cidr,
    integer,
    number,
    probe_settings,
    role_arn,
    schedule,
    string_list,
    text,
)
from settings.probe_timing import failure_threshold_for

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPO_ROOT / "cdk.json"


@dataclass(frozen=True)
class Field:
    parse: Parser
    doc: str


def key(parse: Parser, doc: str) -> Any:
    """Declare a config key: its parser and the doc the README table shows (what it does and costs)."""
    return field(metadata={"parse": parse, "doc": doc})


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """The keys the snapshot pipeline's handlers read at run time (the stack passes them as JSON in
    ``names.ENV_PIPELINE_CONFIG``) and the loop bounds derived from them, so the stack's execution
    timeout and the state machine's polls agree."""

    # --- cluster ---
    kubernetesVersion: str = key(
        text(K8S_VERSION, "expected a supported minor version such as 1.36"),
        "EKS version; also selects the Bottlerocket builder AMI (aws-k8s-<version>). Checked at synth "
            "against the version table (docs/versions.md): past EKS extended support fails, in extended "
            "support warns (+$365/month list price); must be within Karpenter's and the kubectl layer's range.")
    # --- vLLM workload ---
    vllmRepository: str = key(
        text(r"[a-z0-9]+([._/-][a-z0-9]+)*", "expected an ECR repository name such as vllm/vllm-openai"),
        "Private ECR repository (this account and region) holding the vLLM image; pushes to it trigger a build.")
    vllmImageTag: str = key(
        text(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "expected an image tag such as v0.11.0"),
        "vLLM image tag cached in the snapshot and deployed (pinned by digest once published).")
    extraImages: tuple[str, ...] = key(
        string_list(text(IMAGE_REF, "expected full image references such as public.ecr.aws/org/img@sha256:...")),
        "More images to cache; outside private ECR they must be pinned by digest and pullable anonymously.")
    imagePlatforms: tuple[str, ...] = key(
        string_list(choice("amd64", "arm64"), min_items=1),
        "Platforms pulled into the snapshot; each adds the image's size again.")
    # --- snapshot pipeline ---
    snapshotParameterName: str = key(
        text(SSM_PARAMETER, "expected an SSM parameter name starting with /"),
        "Parameter Store name holding the published snapshot ID (metadata sits at <name>/metadata).")
    builderInstanceType: str = key(
        text(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "expected an instance type such as m6i.xlarge"),
        "Builder instance (x86_64): larger types decompress layers faster; billed only while building.")
    dataVolumeSizeGiB: int = key(
        integer(20, 16384),
        "Builder data volume (and so snapshot) size; must hold every image unpacked.")
    dataVolumeIops: int = key(
        integer(3000, 16000),
        "Builder gp3 IOPS (3000 included; more costs extra while building).")
    dataVolumeThroughput: int = key(
        integer(125, 1000),
        "Builder gp3 throughput MiB/s (125 included).")
    snapshotRetentionCount: int = key(
        integer(2, 50),
        "Pipeline snapshots kept (published + rollback target always kept); each costs $0.05/GB-month.")
    pollIntervalSeconds: int = key(
        integer(1, 300),
        "How often the state machine polls SSM, commands and snapshots.")
    maxPolls: int = key(
        integer(1, 1000),
        "Polls per wait before the run fails with a timeout error (interval x polls = the limit).")
    pullTimeoutSeconds: int = key(
        integer(60, 28800),
        "SSM command execution timeout for pulling all images.")
    triggerDebounceSeconds: int = key(
        integer(0, 3600),
        "Wait before an ECR-triggered build starts, so a burst of pushes builds once.")
    fastSnapshotRestoreAzs: tuple[str, ...] = key(
        string_list(text(r"[a-z]{2}(-gov)?-[a-z]+-\d[a-z]", "expected availability zone names such as us-west-2a")),
        "AZs with Fast Snapshot Restore on the published snapshot: no lazy loading, $0.75/hour per AZ.")

    # --- derived loop bounds (one place: the stack's timeout and the handlers agree) ---
    @property
    def command_max_polls(self) -> int:
        """Polls of the pull command: its own execution timeout plus a delivery allowance of maxPolls."""
        return math.ceil(self.pullTimeoutSeconds / self.pollIntervalSeconds) + self.maxPolls

    @property
    def build_max_seconds(self) -> int:
        """Longest legitimate build: online + pull + stop + snapshot + cleanup waits, plus 15 min of steps."""
        polls = 4 * self.maxPolls + self.command_max_polls
        return polls * self.pollIntervalSeconds + 900

    @property
    def gate_max_polls(self) -> int:
        """Polls an execution waits for an older one: one whole build of the other execution."""
        return math.ceil(self.build_max_seconds / self.pollIntervalSeconds)

    @property
    def execution_timeout_seconds(self) -> int:
        """The state machine timeout: debounce + waiting for one older build + our own build."""
        return self.triggerDebounceSeconds + 2 * self.build_max_seconds

    @property
    def metadata_parameter_name(self) -> str:
        return names.metadata_parameter_name(self.snapshotParameterName)

    def pipeline_values(self) -> dict[str, Any]:
        """The pipeline's keys and their values (typed), e.g. to build the handlers' settings."""
        return {f.name: getattr(self, f.name) for f in fields(PipelineSettings)}


@dataclass(frozen=True, kw_only=True)
class AppConfig(PipelineSettings):
    """Every key: the pipeline's (inherited) and the rest, in the README table's order."""

    # --- where ---
    account: str | None = key(
        text(r"\d{12}", "expected a 12-digit AWS account ID or null", optional=True),
        "Account to deploy to; null keeps the app environment-agnostic (synth needs no credentials).")
    region: str | None = key(
        text(r"[a-z]{2}(-gov)?-[a-z]+-\d", "expected a region such as us-west-2 or null", optional=True),
        "Region to deploy to; null = environment-agnostic.")
    # --- cluster ---
    clusterName: str = key(
        text(DNS_LABEL, "expected a lowercase DNS label (a-z, 0-9, -), at most 63 characters"),
        "EKS cluster name; also the karpenter.sh/discovery tag value.")
    vpcCidr: str = key(
        cidr,
        "VPC CIDR block; private subnets host nodes and the builder.")
    maxAzs: int = key(
        integer(2, 3),
        "Availability zones the VPC spans (2-3).")
    natGateways: int = key(
        integer(1, 3),
        "NAT gateways: 1 is cheapest (~$32/month + data), one per AZ survives an AZ outage.")
    vpcInterfaceEndpoints: bool = key(
        boolean,
        "Interface endpoints for ECR, SSM, STS, EKS Auth (Pod Identity), EC2, SQS, logs: traffic stays off NAT (~$7/month per endpoint per AZ). The S3 gateway endpoint is always on (free).")
    clusterEndpointCidrs: tuple[str, ...] = key(
        string_list(text(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", "expected IPv4 CIDR blocks such as 203.0.113.0/24"), min_items=1),
        "CIDRs allowed to reach the public Kubernetes API endpoint (narrow it to CI and operator ranges).")
    clusterAdminRoleArns: tuple[str, ...] = key(
        string_list(role_arn),
        "IAM roles that get an EKS access entry with AmazonEKSClusterAdminPolicy (kubectl, deploy-apps, "
            "report). Empty = only CloudFormation can reach the cluster (synth warns loudly).")
    systemNodeInstanceType: str = key(
        text(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "expected an instance type such as m6i.large"),
        "Instance type of the small managed node group running Karpenter and CoreDNS.")
    systemNodeCount: int = key(
        integer(1, 10),
        "Nodes in the system node group (2 keeps Karpenter highly available).")
    karpenterVersion: str = key(
        text(r"1\.\d+\.\d+", "expected a Karpenter v1 chart version such as 1.14.1"),
        "Karpenter Helm chart version (v1 API; the CRDs in tests are from 1.14.1).")
    karpenterNamespace: str = key(
        text(DNS_LABEL, "expected a Kubernetes namespace name"),
        "Namespace Karpenter runs in.")
    # --- GPU nodes ---
    gpuInstanceFamilies: tuple[str, ...] = key(
        string_list(text(INSTANCE_FAMILY, "expected instance families such as g5 or g6e"), min_items=1),
        "GPU instance families Karpenter may launch (T4=g4dn, A10G=g5, L4=g6).")
    gpuCapacityTypes: tuple[str, ...] = key(
        string_list(choice("spot", "on-demand"), min_items=1),
        "Capacity types: spot is ~60-70% cheaper but can be interrupted with 2 minutes' notice.")
    gpuLimit: int = key(
        integer(1, 1000),
        "NodePool limit on nvidia.com/gpu: the most GPUs (and so cost) Karpenter may add.")
    driftBudgetNodes: int = key(
        integer(0, 100),
        "Nodes replaced at once when a new snapshot drifts the NodePool (0 = never automatically).")
    # --- model ---
    modelBucketName: str | None = key(
        text(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "expected an S3 bucket name or null", optional=True),
        "Bucket for model weights; null lets CloudFormation name it.")
    modelPrefix: str = key(
        text(S3_PREFIX, "expected an S3 key prefix without leading or trailing '/'"),
        "Key prefix of the model: *.safetensors, config.json and tokenizer directly under it.")
    modelSourceId: str = key(
        text(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "expected a Hugging Face repo id such as org/name"),
        "Hugging Face repo the operator CLI uploads from (setup-model-s3).")
    servedModelName: str = key(
        text(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", "expected a model name without spaces or slashes"),
        "Name clients use in the OpenAI API (--served-model-name).")
    quantization: str = key(
        choice(*QUANTIZATIONS),
        "vLLM --quantization: auto omits the flag, so vLLM reads the method from the checkpoint's config.json "
            "and picks the fastest kernel the GPU has (awq_marlin on A10G/L4, awq on T4); a value forces that kernel.")
    maxModelLen: int = key(
        integer(256, 1_048_576),
        "vLLM --max-model-len: longer contexts need more KV-cache memory.")
    gpuMemoryUtilization: float = key(
        number(0.1, 0.99),
        "vLLM --gpu-memory-utilization: share of GPU memory vLLM may take.")
    streamerConcurrency: int = key(
        integer(1, 256),
        "Run:ai streamer threads reading from S3; more = faster until the NIC saturates.")
    # --- vLLM workload ---
    vllmNamespace: str = key(
        text(DNS_LABEL, "expected a Kubernetes namespace name"),
        "Namespace of the vLLM Deployment.")
    vllmServiceAccount: str = key(
        text(DNS_LABEL, "expected a Kubernetes service account name"),
        "Service account bound to the model-read IAM role.")
    vllmReplicas: int = key(
        integer(0, 100),
        "vLLM replicas (each takes one GPU).")
    ecrTriggerTagPattern: str = key(
        text(r"[A-Za-z0-9_.*-]{1,128}", "expected a tag or a wildcard such as v0.*"),
        "Pushed tags (EventBridge wildcard) that start a build.")
    # --- snapshot pipeline ---
    scheduleExpression: str | None = key(
        schedule,
        'Scheduled rebuild ("off" disables); picks up Bottlerocket and base-image updates.')
    alarmEmail: str | None = key(
        text(r"[^@\s]+@[^@\s]+\.[^@\s]+", "expected an email address or null", optional=True),
        "Email subscribed to pipeline failure alarms (null = topic only).")
    # --- node data volume (restored from the snapshot) ---
    nodeDataVolumeSizeGiB: int = key(
        integer(20, 16384),
        "Node data volume size; must be >= dataVolumeSizeGiB.")
    nodeDataVolumeIops: int = key(
        integer(3000, 16000),
        "Node data volume gp3 IOPS.")
    nodeDataVolumeThroughput: int = key(
        integer(125, 1000),
        "Node data volume gp3 throughput MiB/s.")
    volumeInitializationRate: int | None = key(
        integer(100, 300, optional=True),
        "EBS volume initialization rate MiB/s for the restored data volume (null = lazy loading); billed per GiB initialized.")
    bottlerocketFallbackVersion: str = key(
        bottlerocket_version,
        "Bottlerocket version (pinned) for nodes when the snapshot's is unknown or none is published.")
    # --- startup probes and caches ---
    startupBudgetSeconds: int = key(
        integer(30, 3600),
        "Longest cold start tolerated before the startup probe restarts the pod.")
    startupProbeInitialDelaySeconds: int = key(
        integer(0, 3600),
        "Startup probe initial delay.")
    startupProbePeriodSeconds: int = key(
        integer(1, 60),
        "Startup probe period: a ready pod is detected within one period.")
    startupProbeTimeoutSeconds: int = key(
        integer(1, 60),
        "Startup probe timeout (GET /v1/models); at most the period.")
    readinessProbe: ProbeSettings = key(
        probe_settings,
        "Readiness probe (GET /v1/models) timing: how fast a pod joins or leaves the Service.")
    livenessProbe: ProbeSettings = key(
        probe_settings,
        "Liveness probe (GET /health) timing: how long a hung engine keeps its GPU before a restart.")
    compileCacheOnNode: bool = key(
        boolean,
        "Keep vLLM's torch.compile cache on the node's data volume so later pods on the node skip compilation.")
    compileCacheS3: bool = key(
        boolean,
        "Share vLLM's torch.compile cache through s3://<model bucket>/compile-cache/<image digest>/: restored before vLLM "
            "starts (verified by SHA-256), published after Ready, so a brand-new node skips compilation. "
            "The cache is executable code: see compileCachePublish and docs/compile-cache.md.")
    compileCacheMaxBytes: int = key(
        integer(1024**2, 1024**4),
        "Most bytes of compile cache published under one image's prefix, and restored into one pod.")
    compileCachePublish: str = key(
        choice("pods", "readonly"),
        "pods: every vLLM pod publishes what S3 lacks (its role may write under compile-cache/*, so a "
            "compromised pod could poison the cache); readonly: pods only restore, their role cannot write, "
            "and `coldstart warm-cache` publishes with its own writer role.")
    manifestsDeployment: str = key(
        choice("kubectl", "cdk"),
        "kubectl: make update-manifests + kubectl apply/GitOps; cdk: the cluster stack applies them.")
    # --- demo chat app (apps/chat) ---
    chatEnabled: bool = key(
        boolean,
        "Deploy the demo chat API + page next to vLLM (update-manifests, deploy-apps; ClusterIP only, open it with "
            "`coldstart chat-url`). Costs one small pod (100m CPU, 128 MiB) and an ECR repository.")
    chatRepository: str = key(
        text(r"[a-z0-9]+([._/-][a-z0-9]+)*", "expected an ECR repository name such as vllm-coldstart/chat"),
        "ECR repository the storage stack creates for the chat image (`make build-push-images` pushes to it; "
            "tags are immutable, scanned on push, the newest 20 kept).")
    chatImageTag: str | None = key(
        text(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "expected an image tag such as git-1a2b3c4 or null", optional=True),
        "Chat image tag to deploy; null = git-<short SHA of this checkout>, the tag `make build-push-images` pushes.")

    # --- derived values (one place, so stacks, charts and handlers agree) ---
    @property
    def startup_failure_threshold(self) -> int:
        """Startup probe failures allowed so that the window kubelet guarantees covers the budget
        (``settings.probe_timing``: initialDelay + period x (failures - 1) >= budget)."""
        return failure_threshold_for(self.startupBudgetSeconds, self.startupProbeInitialDelaySeconds,
                                     self.startupProbePeriodSeconds)

    def to_context(self) -> dict[str, Any]:
        """The config as cdk.json context (prefixed keys, JSON values)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ProbeSettings):
                value = asdict(value)
            out[PREFIX + f.name] = list(value) if isinstance(value, tuple) else value
        return out


# Derived from the declarations above: key -> (parser, doc), in declaration order (the README table's).
SCHEMA: dict[str, Field] = {f.name: Field(f.metadata["parse"], f.metadata["doc"]) for f in fields(AppConfig)}


def parse_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """Parse unprefixed ``data`` into the typed values of ``cls``'s declared keys (ConfigError on a bad one)."""
    return {f.name: f.metadata["parse"](f.name, data[f.name]) for f in fields(cls) if f.name in data}


def kubernetes_support(cfg: AppConfig, today: date) -> versions.Support:
    """EKS's support window for the configured version on ``today`` (the caller's UTC date, so tests
    pin it). Past extended support is a ConfigError; extended support or an unknown version is returned
    for the caller to warn about."""
    support = versions.eks_support(cfg.kubernetesVersion, today)
    if support.status == versions.ENDED:
        raise ConfigError(f"{PREFIX}kubernetesVersion: invalid value {cfg.kubernetesVersion!r}; {support.message}")
    return support


def _version_checks(cfg: AppConfig) -> None:
    """Pairs that cannot work, from the version table (dated; settings/versions.py)."""
    supported = versions.karpenter_supports(cfg.karpenterVersion, cfg.kubernetesVersion)
    if supported is False:
        low, high = versions.KARPENTER_KUBERNETES[".".join(cfg.karpenterVersion.split(".")[:2])]
        raise ConfigError(
            f"{PREFIX}karpenterVersion: invalid value {cfg.karpenterVersion!r} with {PREFIX}kubernetesVersion "
            f"{cfg.kubernetesVersion!r}; Karpenter {cfg.karpenterVersion} supports Kubernetes {low}-{high} "
            f"({versions.KARPENTER_SOURCE}). Pick a Karpenter release that supports {cfg.kubernetesVersion}")
    if supported is None:
        raise ConfigError(
            f"{PREFIX}karpenterVersion: invalid value {cfg.karpenterVersion!r}; it is not in the version table "
            f"(known: {', '.join(versions.KARPENTER_KUBERNETES)}); add its Kubernetes range to "
            "settings/versions.py from Karpenter's compatibility matrix")
    if not versions.kubectl_layer_supports(cfg.kubernetesVersion):
        raise ConfigError(
            f"{PREFIX}kubernetesVersion: invalid value {cfg.kubernetesVersion!r}; the CDK kubectl layer is kubectl "
            f"{versions.KUBECTL_LAYER_VERSION}, which supports clusters one minor version either side. Use "
            f"aws-cdk.lambda-layer-kubectl-v<minor> matching the cluster (requirements.txt, stacks/constructs/eks_cluster.py)")


def _cross_checks(cfg: AppConfig) -> None:
    _version_checks(cfg)
    if cfg.nodeDataVolumeSizeGiB < cfg.dataVolumeSizeGiB:
        raise ConfigError(
            f"{PREFIX}nodeDataVolumeSizeGiB: invalid value {cfg.nodeDataVolumeSizeGiB!r}; it must be >= "
            f"{PREFIX}dataVolumeSizeGiB ({cfg.dataVolumeSizeGiB}) because a volume cannot be smaller than its snapshot"
        )
    if cfg.startupProbeInitialDelaySeconds >= cfg.startupBudgetSeconds:
        raise ConfigError(
            f"{PREFIX}startupProbeInitialDelaySeconds: invalid value {cfg.startupProbeInitialDelaySeconds!r}; "
            f"it must be below {PREFIX}startupBudgetSeconds ({cfg.startupBudgetSeconds})"
        )
    if cfg.startupProbeTimeoutSeconds > cfg.startupProbePeriodSeconds:
        raise ConfigError(
            f"{PREFIX}startupProbeTimeoutSeconds: invalid value {cfg.startupProbeTimeoutSeconds!r}; it must not exceed "
            f"{PREFIX}startupProbePeriodSeconds ({cfg.startupProbePeriodSeconds})"
        )
    if cfg.startup_failure_threshold > 1000:
        raise ConfigError(
            f"{PREFIX}startupProbePeriodSeconds: invalid value {cfg.startupProbePeriodSeconds!r}; the budget of "
            f"{cfg.startupBudgetSeconds}s needs {cfg.startup_failure_threshold} probes; raise the period"
        )
    if cfg.volumeInitializationRate is not None and cfg.fastSnapshotRestoreAzs:
        # EC2 API reference (EbsBlockDevice.VolumeInitializationRate): with both set, the volume is
        # initialized at the rate "instead of fast snapshot restore" -- FSR would bill for nothing.
        raise ConfigError(
            f"{PREFIX}volumeInitializationRate: invalid value {cfg.volumeInitializationRate!r} together with "
            f"{PREFIX}fastSnapshotRestoreAzs {list(cfg.fastSnapshotRestoreAzs)!r}; EBS then ignores fast snapshot "
            "restore while it keeps billing. Set one of them to null/[]"
        )
    if cfg.fastSnapshotRestoreAzs and cfg.region and not all(az.startswith(cfg.region) for az in cfg.fastSnapshotRestoreAzs):
        raise ConfigError(
            f"{PREFIX}fastSnapshotRestoreAzs: invalid value {list(cfg.fastSnapshotRestoreAzs)!r}; "
            f"zones must be in {PREFIX}region ({cfg.region})"
        )


def load_config(context: Mapping[str, Any]) -> AppConfig:
    """Build the typed config from context values (prefixed keys). Raises ConfigError."""
    unknown = sorted(k for k in context if k.startswith(PREFIX) and k[len(PREFIX):] not in SCHEMA)
    if unknown:
        close = difflib.get_close_matches(unknown[0][len(PREFIX):], list(SCHEMA), n=1, cutoff=0.6)
        hint = f"did you mean {PREFIX}{close[0]}? " if close else ""
        raise ConfigError(f"{unknown[0]}: unknown key; {hint}known keys: {', '.join(PREFIX + k for k in SCHEMA)}")
    values: dict[str, Any] = {}
    for key, spec in SCHEMA.items():
        if PREFIX + key not in context:
            raise ConfigError(f"{PREFIX}{key}: missing; declare it in cdk.json context (see the README's configuration table)")
        values[key] = spec.parse(key, context[PREFIX + key])
    cfg = AppConfig(**values)
    _cross_checks(cfg)
    return cfg


def default_context() -> dict[str, Any]:
    """The embedded defaults: the prefixed keys of cdk.json's context."""
    context = json.loads(CDK_JSON.read_text())["context"]
    return {k: v for k, v in context.items() if k.startswith(PREFIX)}


def load_default_config(**overrides: Any) -> AppConfig:
    """cdk.json's defaults with optional overrides given by unprefixed key (for tools and tests)."""
    context = default_context()
    context.update({PREFIX + k: v for k, v in overrides.items()})
    return load_config(context)


def from_app_context(all_context: Mapping[str, Any]) -> AppConfig:
    """The config from the CDK app's context (cdk.json merged with ``-c`` overrides).

    Keys missing from the app's context (a test app built without cdk.json) fall back to
    cdk.json's defaults, so the defaults stay declared in one file.
    """
    # `cdk synth -c gpuLimit=4` would otherwise be ignored in silence (the CLI accepts both spellings)
    bare = sorted(k for k in all_context if k in SCHEMA)
    if bare:
        raise ConfigError(f"{bare[0]}: invalid context key {bare[0]}={all_context[bare[0]]!r} without the {PREFIX} prefix, "
                          f"so it would be ignored; use -c {PREFIX}{bare[0]}=...")
    context = default_context()
    context.update({k: v for k, v in all_context.items() if k.startswith(PREFIX)})
    return load_config(context)
