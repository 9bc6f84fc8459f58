"""The manifests carry the published configuration: vLLM args and probes, the snapshot on /dev/xvdb,
the Bottlerocket alias, the NodePool knobs, identity and the compile cache."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from chart_helpers import ACCOUNT, BUCKET, REGION, SNAPSHOT_ID, data_volume, find, published_fixture, synth, vllm_container

from k8s_charts.inputs import ChartInputError
from settings import names
from settings.config import load_default_config
from settings.probe_timing import ProbeTiming

CFG = load_default_config()
INT32_MAX = 2**31 - 1


@pytest.fixture(scope="module")
def published_manifests():
    return synth(CFG, published_fixture())


def _arg(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} in {args}"
    return args[args.index(flag) + 1]


def test_vllm_args_match_the_seed_configuration(published_manifests) -> None:
    container = vllm_container(published_manifests[0])
    args = container["args"]
    assert container["command"] == ["vllm", "serve"]
    assert args[0] == f"s3://{BUCKET}/{CFG.modelPrefix}/"  # the model, a directory URI
    assert _arg(args, "--served-model-name") == CFG.servedModelName == "mistral-7b-awq"
    assert _arg(args, "--load-format") == "runai_streamer"
    assert _arg(args, "--max-model-len") == "4096"
    assert _arg(args, "--gpu-memory-utilization") == "0.95"
    # auto (the default): no flag, vLLM reads awq from config.json and picks awq_marlin where it runs
    assert "--quantization" not in args
    assert json.loads(_arg(args, "--model-loader-extra-config")) == {"concurrency": CFG.streamerConcurrency}
    assert {"name": "RUNAI_STREAMER_CONCURRENCY", "value": str(CFG.streamerConcurrency)} in container["env"]
    assert int(_arg(args, "--port")) == names.VLLM_PORT


def test_quantization_can_still_be_forced() -> None:
    manifests, _ = synth(replace(CFG, quantization="awq"), None)
    assert _arg(vllm_container(manifests)["args"], "--quantization") == "awq"


def test_probes_notice_readiness_at_once_and_the_startup_window_covers_the_budget(published_manifests) -> None:
    container = vllm_container(published_manifests[0])
    startup, readiness, liveness = container["startupProbe"], container["readinessProbe"], container["livenessProbe"]
    # No initial delay (Kubernetes' default 0 is left out), a probe every 2 s, and 136 failures: kubelet
    # still guarantees 0 + 2 x (136 - 1) = 270 s = startupBudgetSeconds (settings.probe_timing).
    assert startup == {"httpGet": {"path": "/v1/models", "port": "http"}, "periodSeconds": 2,
                       "timeoutSeconds": 2, "failureThreshold": 136}
    assert ProbeTiming(startup.get("initialDelaySeconds", 0), startup["periodSeconds"],
                       startup["failureThreshold"]).guaranteed_s == CFG.startupBudgetSeconds
    assert readiness == {"httpGet": {"path": "/v1/models", "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2,
                         "failureThreshold": 3}
    assert liveness == {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 30, "timeoutSeconds": 10,
                        "failureThreshold": 3}
    port = next(p for p in container["ports"] if p["name"] == "http")
    assert port["containerPort"] == names.VLLM_PORT


def test_readiness_and_liveness_timing_come_from_config() -> None:
    cfg = load_default_config(readinessProbe={"periodSeconds": 7, "timeoutSeconds": 3, "failureThreshold": 2},
                              livenessProbe={"periodSeconds": 60, "timeoutSeconds": 20, "failureThreshold": 5},
                              startupProbePeriodSeconds=10, startupProbeTimeoutSeconds=8)
    container = vllm_container(synth(cfg, None)[0])
    assert container["readinessProbe"] == {"httpGet": {"path": "/v1/models", "port": "http"}, "periodSeconds": 7,
                                           "timeoutSeconds": 3, "failureThreshold": 2}
    assert container["livenessProbe"] == {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 60,
                                          "timeoutSeconds": 20, "failureThreshold": 5}
    assert container["startupProbe"]["timeoutSeconds"] == 8


@pytest.mark.parametrize("budget, delay, period", [(270, 120, 10), (3600, 0, 60), (3600, 30, 4), (31, 30, 1), (600, 599, 60)])
def test_derived_startup_failure_threshold_covers_the_budget_within_kubernetes_limits(budget, delay, period) -> None:
    cfg = load_default_config(startupBudgetSeconds=budget, startupProbeInitialDelaySeconds=delay, startupProbePeriodSeconds=period,
                              startupProbeTimeoutSeconds=min(5, period))
    manifests, _ = synth(cfg, None)
    startup = vllm_container(manifests)["startupProbe"]
    threshold = startup["failureThreshold"]
    assert threshold == cfg.startup_failure_threshold
    # kubelet's first probe comes in [delay, delay + period): the F-th failing probe starts no earlier
    # than delay + (F - 1) x period (settings.probe_timing), so that is the window a start surely gets.
    window = startup.get("initialDelaySeconds", 0) + startup["periodSeconds"] * (threshold - 1)
    assert window >= budget  # a cold start within the budget is never killed
    assert window - budget < period or threshold == 1  # ...and the window is not longer than one extra probe
    assert 1 <= threshold <= INT32_MAX and 1 <= startup["periodSeconds"] <= INT32_MAX
    assert startup["timeoutSeconds"] <= startup["periodSeconds"]


def test_data_volume_is_restored_from_the_snapshot_on_xvdb(published_manifests) -> None:
    mappings = find(published_manifests[0], "EC2NodeClass")["spec"]["blockDeviceMappings"]
    assert [m["deviceName"] for m in mappings] == ["/dev/xvda", "/dev/xvdb"]
    assert "snapshotID" not in mappings[0]["ebs"]  # the OS volume comes from the AMI
    assert data_volume(published_manifests[0]) == {
        "snapshotID": SNAPSHOT_ID,
        "volumeSize": f"{CFG.nodeDataVolumeSizeGiB}Gi",
        "volumeType": "gp3",
        "iops": CFG.nodeDataVolumeIops,
        "throughput": CFG.nodeDataVolumeThroughput,
        "encrypted": True,
        "deleteOnTermination": True,
        # hydrated by default (docs/coldstart.md, "Hydration"): initialized at 300 MiB/s, not lazily
        "volumeInitializationRate": 300,
    }
    assert CFG.nodeDataVolumeSizeGiB >= CFG.dataVolumeSizeGiB


def test_without_a_snapshot_the_data_volume_is_empty_and_the_notice_is_loud() -> None:
    manifests, built = synth(replace(CFG, volumeInitializationRate=200), None)
    ebs = data_volume(manifests)
    assert "snapshotID" not in ebs and "volumeInitializationRate" not in ebs
    assert ebs["volumeSize"] == f"{CFG.nodeDataVolumeSizeGiB}Gi"
    assert any(n.startswith("WARNING: no image-cache snapshot is published") for n in built.notices)
    # never bottlerocket@latest (it drifts every node at each release): the pinned fallback
    assert find(manifests, "EC2NodeClass")["spec"]["amiSelectorTerms"] == [{"alias": f"bottlerocket@v{CFG.bottlerocketFallbackVersion}"}]


def test_volume_initialization_rate_comes_from_config_with_the_snapshot() -> None:
    manifests, _ = synth(replace(CFG, volumeInitializationRate=250), published_fixture())
    assert data_volume(manifests)["volumeInitializationRate"] == 250
    assert data_volume(manifests)["snapshotID"] == SNAPSHOT_ID


def test_ami_alias_pins_the_snapshots_bottlerocket_version_else_the_fallback(published_manifests) -> None:
    assert find(published_manifests[0], "EC2NodeClass")["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.66.0"}]
    pinned, built = synth(replace(CFG, bottlerocketFallbackVersion="1.49.2"), published_fixture(bottlerocket_version=None))
    assert find(pinned, "EC2NodeClass")["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.49.2"}]
    assert any("Bottlerocket version snapshot" in n for n in built.notices)


def test_node_class_security_and_discovery(published_manifests) -> None:
    spec = find(published_manifests[0], "EC2NodeClass")["spec"]
    assert spec["role"] == "KarpenterNodeRole-vllm-coldstart"
    assert "instanceProfile" not in spec
    discovery = [{"tags": {names.DISCOVERY_TAG: CFG.clusterName}}]
    assert spec["subnetSelectorTerms"] == discovery and spec["securityGroupSelectorTerms"] == discovery
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1  # pods cannot reach IMDS
    assert all(m["ebs"]["encrypted"] for m in spec["blockDeviceMappings"])
    kubelet = spec["kubelet"]
    # Image GC starts later than the kubelet default (85%) so the cached image survives longer.
    assert kubelet["imageGCHighThresholdPercent"] > 85 and kubelet["imageGCLowThresholdPercent"] >= 80
    assert kubelet["imageGCHighThresholdPercent"] > kubelet["imageGCLowThresholdPercent"]


def test_node_pool_knobs_come_from_config() -> None:
    cfg = replace(CFG, gpuInstanceFamilies=("g5", "g6e"), gpuCapacityTypes=("on-demand",), gpuLimit=3, driftBudgetNodes=2)
    manifests, _ = synth(cfg, published_fixture())
    spec = find(manifests, "NodePool")["spec"]
    reqs = {r["key"]: r for r in spec["template"]["spec"]["requirements"]}
    assert reqs["karpenter.k8s.aws/instance-family"] == {"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                                                         "values": ["g5", "g6e"]}
    assert reqs["karpenter.sh/capacity-type"]["values"] == ["on-demand"]
    assert reqs["kubernetes.io/arch"]["values"] == list(CFG.imagePlatforms)
    assert spec["template"]["spec"]["taints"] == [{"key": names.GPU_TAINT_KEY, "effect": "NoSchedule"}]
    assert spec["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                        "name": names.GPU_NODECLASS}
    assert spec["limits"] == {names.GPU_RESOURCE: 3}
    assert spec["disruption"]["budgets"] == [{"nodes": "2", "reasons": ["Drifted"]}]


def test_pod_lands_on_the_gpu_pool_with_one_gpu_and_shm(published_manifests) -> None:
    pod = find(published_manifests[0], "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"karpenter.sh/nodepool": names.GPU_NODEPOOL}
    assert {"key": names.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    container = vllm_container(published_manifests[0])
    assert container["resources"]["limits"][names.GPU_RESOURCE] == 1
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_image_is_pinned_by_digest_from_the_metadata(published_manifests) -> None:
    pinned = published_fixture().images[0].pinned
    assert vllm_container(published_manifests[0])["image"] == pinned
    assert vllm_container(published_manifests[0])["imagePullPolicy"] == "IfNotPresent"


def test_image_falls_back_to_private_ecr_then_docker_hub() -> None:
    manifests, _ = synth(CFG, None)
    assert vllm_container(manifests)["image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/vllm/vllm-openai:v0.34.0"
    manifests, built = synth(CFG, None, account=None)
    assert vllm_container(manifests)["image"] == "docker.io/vllm/vllm-openai:v0.34.0"
    assert any(n.startswith("WARNING: account/region unknown") for n in built.notices)


def test_a_snapshot_of_another_tag_is_not_deployed_by_digest() -> None:
    manifests, built = synth(replace(CFG, vllmImageTag="v0.12.0"), published_fixture())
    assert vllm_container(manifests)["image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/vllm/vllm-openai:v0.12.0"
    assert any("not vllm/vllm-openai:v0.12.0" in n for n in built.notices)


def test_region_is_taken_from_a_pinned_ecr_image_when_unknown() -> None:
    manifests, _ = synth(CFG, published_fixture(), account=None, region=None)
    env = vllm_container(manifests)["env"]
    assert {"name": "AWS_REGION", "value": "us-west-2"} in env
    assert {"name": "AWS_DEFAULT_REGION", "value": "us-west-2"} in env


def test_without_any_region_the_manifests_are_refused() -> None:
    with pytest.raises(ChartInputError, match=r"^region: not known.*--region.*coldstart:region"):
        synth(CFG, None, account=None, region=None)


def test_the_pod_never_asks_imds_and_knows_its_user(published_manifests) -> None:
    env = {e["name"]: e["value"] for e in vllm_container(published_manifests[0])["env"]}
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["USER"] == env["LOGNAME"] == "vllm"  # the image has no passwd entry for UID 1000
    root = env["VLLM_CACHE_ROOT"]
    assert env["TORCHINDUCTOR_CACHE_DIR"].startswith(root + "/") and env["TRITON_CACHE_DIR"].startswith(root + "/")


def test_root_filesystem_is_read_only_and_every_written_path_is_a_volume(published_manifests) -> None:
    pod = find(published_manifests[0], "Deployment")["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]
    container = vllm_container(published_manifests[0])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    for var in ("HOME", "VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        assert any(env[var] == m or env[var].startswith(m + "/") for m in mounts), var


def test_replicas_never_share_a_node(published_manifests) -> None:
    pod = find(published_manifests[0], "Deployment")["spec"]["template"]["spec"]
    [term] = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= find(published_manifests[0], "Deployment")["spec"]["template"]["metadata"]["labels"].items()


def test_network_policy_admits_only_the_api_port_from_vllm_and_client_namespaces(published_manifests) -> None:
    policy = find(published_manifests[0], "NetworkPolicy")
    labels = find(published_manifests[0], "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["metadata"]["namespace"] == CFG.vllmNamespace
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"vllm-coldstart/vllm-client": "true"}}}]


def test_pod_identity_is_the_default_and_irsa_annotates_the_service_account(published_manifests) -> None:
    assert "annotations" not in find(published_manifests[0], "ServiceAccount")["metadata"]
    arn = "arn:aws:iam::123456789012:role/vllm-model-read"
    manifests, _ = synth(CFG, None, identity="irsa", vllm_role_arn=arn)
    assert find(manifests, "ServiceAccount")["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": arn}
    sa = find(manifests, "ServiceAccount")["metadata"]
    assert (sa["name"], sa["namespace"]) == (CFG.vllmServiceAccount, CFG.vllmNamespace)
    assert find(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == CFG.vllmServiceAccount


def test_compile_cache_on_the_node_mounts_the_data_volume_at_vllm_cache_root(published_manifests) -> None:
    pod = find(published_manifests[0], "Deployment")["spec"]["template"]["spec"]
    cache = next(v for v in pod["volumes"] if v["name"] == "vllm-cache")
    assert cache["hostPath"] == {"path": "/local/vllm-cache", "type": "DirectoryOrCreate"}
    container = vllm_container(published_manifests[0])
    cache_root = next(e["value"] for e in container["env"] if e["name"] == "VLLM_CACHE_ROOT")
    assert {"name": "vllm-cache", "mountPath": cache_root} in container["volumeMounts"]
    # the directory is handed to the non-root vLLM user by a root init container with only CAP_CHOWN
    init = pod["initContainers"][0]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    # its command is run under the kernel with exactly these capabilities in tests/real/test_pod_kernel.py
    assert init["image"] == container["image"]  # no extra image to pull

    manifests, _ = synth(replace(CFG, compileCacheOnNode=False), None)
    pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert all("hostPath" not in v for v in pod["volumes"])
    assert "cache-permissions" not in [c["name"] for c in pod.get("initContainers", [])]
    assert find(manifests, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_service_and_disruption_budget_select_the_pods(published_manifests) -> None:
    manifests = published_manifests[0]
    labels = find(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service, pdb = find(manifests, "Service")["spec"], find(manifests, "PodDisruptionBudget")["spec"]
    assert service["ports"] == [{"name": "http", "port": names.VLLM_PORT, "targetPort": "http", "protocol": "TCP"}]
    assert service["selector"].items() <= labels.items()
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["maxUnavailable"] == 1
    assert labels["app"] == names.VLLM_APP_LABEL
