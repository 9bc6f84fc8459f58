"""The project's configuration: declared once in ``cdk.json`` context, resolved once into ``AppConfig``.

Every key lives in ``cdk.json`` under ``context`` with the prefix ``coldstart:`` (for example
``coldstart:clusterName``); ``cdk synth -c coldstart:clusterName=prod`` overrides one. Values given
on the command line arrive as strings, so each field parses strings as well as JSON values.

A bad, missing or unknown key raises ``ConfigError`` naming the key, the value and what is allowed,
before any construct is created.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any

from coldstart.probe_timing import failure_threshold_for
from lambdas.snapshot_pipeline import versions

PREFIX = "coldstart:"
REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPO_ROOT / "cdk.json"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid. The message names the key."""


# --- parsers: each takes the raw value (JSON value or CLI string) and returns the typed value ----

Parser = Callable[[str, Any], Any]


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{PREFIX}{key}: invalid value {value!r}; {allowed}")


def _from_string(value: Any) -> Any:
    """`-c key=value` gives strings; accept JSON in them (lists, numbers, booleans, null)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def text(pattern: str, allowed: str, *, optional: bool = False) -> Parser:
    rx = re.compile(pattern)

    def parse(key: str, value: Any) -> Any:
        if value is None or value in ("", "null"):
            if optional:
                return None
            raise _fail(key, value, allowed)
        if not isinstance(value, str) or not rx.fullmatch(value):
            raise _fail(key, value, allowed)
        return value

    return parse


def integer(lo: int, hi: int, *, optional: bool = False) -> Parser:
    def parse(key: str, value: Any) -> Any:
        value = _from_string(value)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _fail(key, value, f"expected a whole number from {lo} to {hi}")
        return value

    return parse


def number(lo: float, hi: float) -> Parser:
    def parse(key: str, value: Any) -> Any:
        value = _from_string(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise _fail(key, value, f"expected a number from {lo} to {hi}")
        return float(value)

    return parse


def boolean(key: str, value: Any) -> bool:
    value = _from_string(value)
    if not isinstance(value, bool):
        raise _fail(key, value, "expected true or false")
    return value


def string_list(item: Parser, *, min_items: int = 0, unique: bool = True) -> Parser:
    def parse(key: str, value: Any) -> Any:
        value = _from_string(value)
        if isinstance(value, str):  # "a,b" from the command line
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or len(value) < min_items:
            raise _fail(key, value, f"expected a list of at least {min_items} item(s)")
        items = tuple(item(key, v) for v in value)
        if unique and len(set(items)) != len(items):
            raise _fail(key, value, "list items must be unique")
        return items

    return parse


def choice(*options: str) -> Parser:
    def parse(key: str, value: Any) -> Any:
        if value not in options:
            raise _fail(key, value, f"expected one of {', '.join(options)}")
        return value

    return parse


def cidr(key: str, value: Any) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except (TypeError, ValueError):
        raise _fail(key, value, "expected an IPv4 CIDR block such as 10.40.0.0/16") from None
    if net.version != 4 or not 16 <= net.prefixlen <= 20:
        raise _fail(key, value, "expected an IPv4 CIDR block from /16 to /20 (room for subnets)")
    return str(net)


ROLE_ARN = r"arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}"


def role_arn(key: str, value: Any) -> str:
    """An IAM role ARN (not an STS session ARN: access entries name the role)."""
    if isinstance(value, str) and ":assumed-role/" in value:
        raise _fail(key, value, "that is an STS session ARN; give the role's ARN, arn:aws:iam::<account>:role/<name> "
                                "(aws iam get-role --role-name <name> --query Role.Arn)")
    if not isinstance(value, str) or not re.fullmatch(ROLE_ARN, value):
        raise _fail(key, value, "expected IAM role ARNs such as arn:aws:iam::123456789012:role/Admin")
    return value


def bottlerocket_version(key: str, value: Any) -> str:
    if value == "latest":
        raise _fail(key, value, "bottlerocket@latest drifts (replaces) every GPU node at each Bottlerocket release; "
                                "pin a version such as 1.50.0 (the one your snapshot was built with)")
    if not isinstance(value, str) or not re.fullmatch(r"v?\d+\.\d+\.\d+", value):
        raise _fail(key, value, "expected a pinned Bottlerocket version such as 1.50.0")
    return value.lstrip("v")


def schedule(key: str, value: Any) -> str | None:
    if value in (None, "", "off", "none", False):
        return None
    if isinstance(value, str) and re.fullmatch(r"(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))", value):
        return value
    raise _fail(key, value, 'expected "rate(7 days)", "cron(0 3 ? * SUN *)" or "off"')


@dataclass(frozen=True)
class ProbeSettings:
    """An HTTP probe's timing (the path is fixed by vLLM: /v1/models or /health)."""

    periodSeconds: int
    timeoutSeconds: int
    failureThreshold: int


def probe_settings(key: str, value: Any) -> ProbeSettings:
    value = _from_string(value)
    keys = ("periodSeconds", "timeoutSeconds", "failureThreshold")
    allowed = 'expected {"periodSeconds": 1-3600, "timeoutSeconds": 1-period, "failureThreshold": 1-1000}'
    if not isinstance(value, dict) or set(value) != set(keys):
        raise _fail(key, value, allowed)
    limits = {"periodSeconds": 3600, "timeoutSeconds": 3600, "failureThreshold": 1000}
    for name in keys:
        item = value[name]
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= limits[name]:
            raise _fail(key, value, f"{name} {item!r} out of range; {allowed}")
    if value["timeoutSeconds"] > value["periodSeconds"]:
        raise _fail(key, value, "timeoutSeconds must not exceed periodSeconds (probes would overlap)")
    return ProbeSettings(**value)


# auto = no --quantization flag: vLLM detects the method from the checkpoint (config.json) and upgrades
# awq/gptq to their Marlin kernels where the GPU supports them (compute capability >= 8.0).
QUANTIZATIONS = ("auto", "awq", "awq_marlin", "gptq", "gptq_marlin", "fp8")
K8S_VERSION = r"1\.(2[89]|3[0-9])"
INSTANCE_FAMILY = r"[a-z]+[0-9]+[a-z0-9-]*"  # g4dn, g5, g6e, p4d, g6-...
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
S3_PREFIX = r"[A-Za-z0-9!_.*'()-]([A-Za-z0-9!_.*'()/-]*[A-Za-z0-9!_.*'()-])?"  # no leading or trailing slash
IMAGE_REF = r"[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]{1,128})?(@sha256:[a-f0-9]{64})?"
SSM_PARAMETER = r"/[A-Za-z0-9_.\-/]{1,1000}[A-Za-z0-9_.\-]"


@dataclass(frozen=True)
class Field:
    parse: Parser
    doc: str


# Order here is the order of the README table. The doc says what the knob does and costs.
SCHEMA: dict[str, Field] = {
    # --- where ---
    "account": Field(text(r"\d{12}", "expected a 12-digit AWS account ID or null", optional=True),
                     "Account to deploy to; null keeps the app environment-agnostic (synth needs no credentials)."),
    "region": Field(text(r"[a-z]{2}(-gov)?-[a-z]+-\d", "expected a region such as us-west-2 or null", optional=True),
                    "Region to deploy to; null = environment-agnostic."),
    # --- cluster ---
    "clusterName": Field(text(DNS_LABEL, "expected a lowercase DNS label (a-z, 0-9, -), at most 63 characters"),
                         "EKS cluster name; also the karpenter.sh/discovery tag value."),
    "kubernetesVersion": Field(text(K8S_VERSION, "expected a supported minor version such as 1.36"),
                               "EKS version; also selects the Bottlerocket builder AMI (aws-k8s-<version>). Checked at synth "
                               "against the version table (docs/versions.md): past EKS extended support fails, in extended "
                               "support warns (+$365/month list price); must be within Karpenter's and the kubectl layer's range."),
    "vpcCidr": Field(cidr, "VPC CIDR block; private subnets host nodes and the builder."),
    "maxAzs": Field(integer(2, 3), "Availability zones the VPC spans (2-3)."),
    "natGateways": Field(integer(1, 3), "NAT gateways: 1 is cheapest (~$32/month + data), one per AZ survives an AZ outage."),
    "vpcInterfaceEndpoints": Field(boolean, "Interface endpoints for ECR, SSM, STS, EKS Auth (Pod Identity), EC2, SQS, logs: traffic stays off NAT (~$7/month per endpoint per AZ). The S3 gateway endpoint is always on (free)."),
    "clusterEndpointCidrs": Field(string_list(text(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", "expected IPv4 CIDR blocks such as 203.0.113.0/24"), min_items=1),
                                  "CIDRs allowed to reach the public Kubernetes API endpoint (narrow it to CI and operator ranges)."),
    "clusterAdminRoleArns": Field(string_list(role_arn),
                                  "IAM roles that get an EKS access entry with AmazonEKSClusterAdminPolicy (kubectl, deploy-apps, "
                                  "report). Empty = only CloudFormation can reach the cluster (synth warns loudly)."),
    "systemNodeInstanceType": Field(text(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "expected an instance type such as m6i.large"),
                                    "Instance type of the small managed node group running Karpenter and CoreDNS."),
    "systemNodeCount": Field(integer(1, 10), "Nodes in the system node group (2 keeps Karpenter highly available)."),
    "karpenterVersion": Field(text(r"1\.\d+\.\d+", "expected a Karpenter v1 chart version such as 1.14.1"),
                              "Karpenter Helm chart version (v1 API; the CRDs in tests are from 1.14.1)."),
    "karpenterNamespace": Field(text(DNS_LABEL, "expected a Kubernetes namespace name"),
                                "Namespace Karpenter runs in."),
    # --- GPU nodes ---
    "gpuInstanceFamilies": Field(string_list(text(INSTANCE_FAMILY, "expected instance families such as g5 or g6e"), min_items=1),
                                 "GPU instance families Karpenter may launch (T4=g4dn, A10G=g5, L4=g6)."),
    "gpuCapacityTypes": Field(string_list(choice("spot", "on-demand"), min_items=1),
                              "Capacity types: spot is ~60-70% cheaper but can be interrupted with 2 minutes' notice."),
    "gpuLimit": Field(integer(1, 1000), "NodePool limit on nvidia.com/gpu: the most GPUs (and so cost) Karpenter may add."),
    "driftBudgetNodes": Field(integer(0, 100),
                              "Nodes replaced at once when a new snapshot drifts the NodePool (0 = never automatically)."),
    # --- model ---
    "modelBucketName": Field(text(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "expected an S3 bucket name or null", optional=True),
                             "Bucket for model weights; null lets CloudFormation name it."),
    "modelPrefix": Field(text(S3_PREFIX, "expected an S3 key prefix without leading or trailing '/'"),
                         "Key prefix of the model: *.safetensors, config.json and tokenizer directly under it."),
    "modelSourceId": Field(text(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "expected a Hugging Face repo id such as org/name"),
                           "Hugging Face repo the operator CLI uploads from (setup-model-s3)."),
    "servedModelName": Field(text(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", "expected a model name without spaces or slashes"),
                             "Name clients use in the OpenAI API (--served-model-name)."),
    "quantization": Field(choice(*QUANTIZATIONS),
                          "vLLM --quantization: auto omits the flag, so vLLM reads the method from the checkpoint's config.json "
                          "and picks the fastest kernel the GPU has (awq_marlin on A10G/L4, awq on T4); a value forces that kernel."),
    "maxModelLen": Field(integer(256, 1_048_576), "vLLM --max-model-len: longer contexts need more KV-cache memory."),
    "gpuMemoryUtilization": Field(number(0.1, 0.99), "vLLM --gpu-memory-utilization: share of GPU memory vLLM may take."),
    "streamerConcurrency": Field(integer(1, 256), "Run:ai streamer threads reading from S3; more = faster until the NIC saturates."),
    # --- vLLM workload ---
    "vllmNamespace": Field(text(DNS_LABEL, "expected a Kubernetes namespace name"), "Namespace of the vLLM Deployment."),
    "vllmServiceAccount": Field(text(DNS_LABEL, "expected a Kubernetes service account name"),
                                "Service account bound to the model-read IAM role."),
    "vllmReplicas": Field(integer(0, 100), "vLLM replicas (each takes one GPU)."),
    "vllmRepository": Field(text(r"[a-z0-9]+([._/-][a-z0-9]+)*", "expected an ECR repository name such as vllm/vllm-openai"),
                            "Private ECR repository (this account and region) holding the vLLM image; pushes to it trigger a build."),
    "vllmImageTag": Field(text(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "expected an image tag such as v0.11.0"),
                          "vLLM image tag cached in the snapshot and deployed (pinned by digest once published)."),
    "ecrTriggerTagPattern": Field(text(r"[A-Za-z0-9_.*-]{1,128}", "expected a tag or a wildcard such as v0.*"),
                                  "Pushed tags (EventBridge wildcard) that start a build."),
    "extraImages": Field(string_list(text(IMAGE_REF, "expected full image references such as public.ecr.aws/org/img@sha256:...")),
                         "More images to cache; outside private ECR they must be pinned by digest and pullable anonymously."),
    "imagePlatforms": Field(string_list(choice("amd64", "arm64"), min_items=1),
                            "Platforms pulled into the snapshot; each adds the image's size again."),
    # --- snapshot pipeline ---
    "snapshotParameterName": Field(text(SSM_PARAMETER, "expected an SSM parameter name starting with /"),
                                   "Parameter Store name holding the published snapshot ID (metadata sits at <name>/metadata)."),
    "builderInstanceType": Field(text(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "expected an instance type such as m6i.xlarge"),
                                 "Builder instance (x86_64): larger types decompress layers faster; billed only while building."),
    "dataVolumeSizeGiB": Field(integer(20, 16384), "Builder data volume (and so snapshot) size; must hold every image unpacked."),
    "dataVolumeIops": Field(integer(3000, 16000), "Builder gp3 IOPS (3000 included; more costs extra while building)."),
    "dataVolumeThroughput": Field(integer(125, 1000), "Builder gp3 throughput MiB/s (125 included)."),
    "snapshotRetentionCount": Field(integer(2, 50), "Pipeline snapshots kept (published + rollback target always kept); each costs $0.05/GB-month."),
    "scheduleExpression": Field(schedule, 'Scheduled rebuild ("off" disables); picks up Bottlerocket and base-image updates.'),
    "pollIntervalSeconds": Field(integer(1, 300), "How often the state machine polls SSM, commands and snapshots."),
    "maxPolls": Field(integer(1, 1000), "Polls per wait before the run fails with a timeout error (interval x polls = the limit)."),
    "pullTimeoutSeconds": Field(integer(60, 28800), "SSM command execution timeout for pulling all images."),
    "triggerDebounceSeconds": Field(integer(0, 3600), "Wait before an ECR-triggered build starts, so a burst of pushes builds once."),
    "fastSnapshotRestoreAzs": Field(string_list(text(r"[a-z]{2}(-gov)?-[a-z]+-\d[a-z]", "expected availability zone names such as us-west-2a")),
                                    "AZs with Fast Snapshot Restore on the published snapshot: no lazy loading, $0.75/hour per AZ."),
    "alarmEmail": Field(text(r"[^@\s]+@[^@\s]+\.[^@\s]+", "expected an email address or null", optional=True),
                        "Email subscribed to pipeline failure alarms (null = topic only)."),
    # --- node data volume (restored from the snapshot) ---
    "nodeDataVolumeSizeGiB": Field(integer(20, 16384), "Node data volume size; must be >= dataVolumeSizeGiB."),
    "nodeDataVolumeIops": Field(integer(3000, 16000), "Node data volume gp3 IOPS."),
    "nodeDataVolumeThroughput": Field(integer(125, 1000), "Node data volume gp3 throughput MiB/s."),
    "volumeInitializationRate": Field(integer(100, 300, optional=True),
                                      "EBS volume initialization rate MiB/s for the restored data volume (null = lazy loading); billed per GiB initialized."),
    "bottlerocketFallbackVersion": Field(bottlerocket_version,
                                         "Bottlerocket version (pinned) for nodes when the snapshot's is unknown or none is published."),
    # --- startup probes and caches ---
    "startupBudgetSeconds": Field(integer(30, 3600), "Longest cold start tolerated before the startup probe restarts the pod."),
    "startupProbeInitialDelaySeconds": Field(integer(0, 3600), "Startup probe initial delay."),
    "startupProbePeriodSeconds": Field(integer(1, 60), "Startup probe period: a ready pod is detected within one period."),
    "startupProbeTimeoutSeconds": Field(integer(1, 60), "Startup probe timeout (GET /v1/models); at most the period."),
    "readinessProbe": Field(probe_settings, "Readiness probe (GET /v1/models) timing: how fast a pod joins or leaves the Service."),
    "livenessProbe": Field(probe_settings, "Liveness probe (GET /health) timing: how long a hung engine keeps its GPU before a restart."),
    "compileCacheOnNode": Field(boolean, "Keep vLLM's torch.compile cache on the node's data volume so later pods on the node skip compilation."),
    "compileCacheS3": Field(boolean, "Share vLLM's torch.compile cache through s3://<model bucket>/compile-cache/<image digest>/: restored before vLLM "
                                      "starts (verified by SHA-256), published after Ready, so a brand-new node skips compilation. "
                                      "The cache is executable code: see compileCachePublish and docs/compile-cache.md."),
    "compileCacheMaxBytes": Field(integer(1024**2, 1024**4), "Most bytes of compile cache published under one image's prefix, and restored into one pod."),
    "compileCachePublish": Field(choice("pods", "readonly"),
                                 "pods: every vLLM pod publishes what S3 lacks (its role may write under compile-cache/*, so a "
                                 "compromised pod could poison the cache); readonly: pods only restore, their role cannot write, "
                                 "and `coldstart warm-cache` publishes with its own writer role."),
    "manifestsDeployment": Field(choice("kubectl", "cdk"),
                                 "kubectl: make update-manifests + kubectl apply/GitOps; cdk: the cluster stack applies them."),
}


@dataclass(frozen=True)
class AppConfig:
    account: str | None
    region: str | None
    clusterName: str
    kubernetesVersion: str
    vpcCidr: str
    maxAzs: int
    natGateways: int
    vpcInterfaceEndpoints: bool
    clusterEndpointCidrs: tuple[str, ...]
    clusterAdminRoleArns: tuple[str, ...]
    systemNodeInstanceType: str
    systemNodeCount: int
    karpenterVersion: str
    karpenterNamespace: str
    gpuInstanceFamilies: tuple[str, ...]
    gpuCapacityTypes: tuple[str, ...]
    gpuLimit: int
    driftBudgetNodes: int
    modelBucketName: str | None
    modelPrefix: str
    modelSourceId: str
    servedModelName: str
    quantization: str
    maxModelLen: int
    gpuMemoryUtilization: float
    streamerConcurrency: int
    vllmNamespace: str
    vllmServiceAccount: str
    vllmReplicas: int
    vllmRepository: str
    vllmImageTag: str
    ecrTriggerTagPattern: str
    extraImages: tuple[str, ...]
    imagePlatforms: tuple[str, ...]
    snapshotParameterName: str
    builderInstanceType: str
    dataVolumeSizeGiB: int
    dataVolumeIops: int
    dataVolumeThroughput: int
    snapshotRetentionCount: int
    scheduleExpression: str | None
    pollIntervalSeconds: int
    maxPolls: int
    pullTimeoutSeconds: int
    triggerDebounceSeconds: int
    fastSnapshotRestoreAzs: tuple[str, ...]
    alarmEmail: str | None
    nodeDataVolumeSizeGiB: int
    nodeDataVolumeIops: int
    nodeDataVolumeThroughput: int
    volumeInitializationRate: int | None
    bottlerocketFallbackVersion: str
    startupBudgetSeconds: int
    startupProbeInitialDelaySeconds: int
    startupProbePeriodSeconds: int
    startupProbeTimeoutSeconds: int
    readinessProbe: ProbeSettings
    livenessProbe: ProbeSettings
    compileCacheOnNode: bool
    compileCacheS3: bool
    compileCacheMaxBytes: int
    compileCachePublish: str
    manifestsDeployment: str

    # --- derived values (one place, so stacks, charts and handlers agree) ---
    @property
    def startup_failure_threshold(self) -> int:
        """Startup probe failures allowed so that the window kubelet guarantees covers the budget
        (``coldstart.probe_timing``: initialDelay + period x (failures - 1) >= budget)."""
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


def kubernetes_support(cfg: AppConfig, today: date) -> versions.Support:
    """EKS's support window for the configured version on ``today`` (the caller's UTC date, so tests
    pin it). Past extended support is a ConfigError; extended support or an unknown version is returned
    for the caller to warn about."""
    support = versions.eks_support(cfg.kubernetesVersion, today)
    if support.status == versions.ENDED:
        raise ConfigError(f"{PREFIX}kubernetesVersion: invalid value {cfg.kubernetesVersion!r}; {support.message}")
    return support


def _version_checks(cfg: AppConfig) -> None:
    """Pairs that cannot work, from the version table (dated; lambdas/snapshot_pipeline/versions.py)."""
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
            "lambdas/snapshot_pipeline/versions.py from Karpenter's compatibility matrix")
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
