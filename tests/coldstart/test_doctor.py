"""doctor on a healthy and on broken setups: AWS checks against moto, cluster checks with a fake kubectl."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import yaml

from coldstart.ops import doctor as doctor_ops
from coldstart.ops.errors import OperatorError
from settings import names
from settings.config import load_default_config
from tests.coldstart.conftest import PARAM, REGION, create_stack_with_outputs, pipeline_snapshot, publish

CONFIG = load_default_config()
ROLE_ARN = "arn:aws:iam::123456789012:role/vllm-model-reader"


def write_manifests(dist: Path, snapshot_id: str) -> Path:
    dist.mkdir(parents=True, exist_ok=True)
    nodeclass = {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": names.GPU_NODECLASS},
        "spec": {"blockDeviceMappings": [
            {"deviceName": "/dev/xvda", "ebs": {"volumeSize": "4Gi"}},
            {"deviceName": "/dev/xvdb", "ebs": {"snapshotID": snapshot_id, "volumeSize": "100Gi"}},
        ]},
    }
    nodepool = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": names.GPU_NODEPOOL}}
    (dist / "gpu-nodes.k8s.yaml").write_text(yaml.safe_dump_all([nodeclass, nodepool]))
    return dist


def statuses(output: str) -> dict[str, str]:
    marks = {}
    for line in output.splitlines():
        head, _, rest = line.partition("  ")
        if head in ("PASS", "FAIL", "SKIP", "WARN"):
            marks[rest.split(":")[0]] = head
    return marks


def test_healthy_setup_passes_and_skips_cluster_checks_without_kubectl(aws, cli, tmp_path):
    snap = pipeline_snapshot()
    publish(snap)
    dist = write_manifests(tmp_path / "dist", snap)

    result = cli("doctor", "--manifests-dir", str(dist))

    assert result.exit_code == 0, result.output
    marks = statuses(result.stdout)
    assert [marks[name] for name, _ in doctor_ops.CHECKS[:5]] == ["PASS"] * 5
    assert [marks[name] for name, _ in doctor_ops.CHECKS[5:]] == ["SKIP"] * (len(doctor_ops.CHECKS) - 5)
    assert "no kubeconfig" in result.stdout


@pytest.mark.parametrize(("cuda", "version", "mark", "fragment"), [
    ([{"status": "compatible", "required": "13.1", "driver": "R580", "driverCuda": "13.0"}], "1.66.0", "FAIL",
     "needs CUDA 13.1 (the published metadata) but aws-k8s-1.36-nvidia (Bottlerocket 1.66.0) ships NVIDIA driver R580"),
    ([], "1.66.0", "WARN", "predates the CUDA gate"),
    (None, "1.52.0", "WARN", "the NVIDIA driver of aws-k8s-1.36-nvidia (Bottlerocket 1.52.0) is not in the version table"),
])
def test_doctor_rechecks_the_published_builds_cuda_against_the_table(aws, cli, tmp_path, cuda, version, mark, fragment):
    snap = pipeline_snapshot()
    publish(snap, version=version, cuda=cuda)
    result = cli("doctor", "--manifests-dir", str(write_manifests(tmp_path / "dist", snap)))
    assert statuses(result.stdout)["GPU driver runs the image's CUDA"] == mark, result.stdout
    assert fragment in result.stdout


def test_stale_manifests_fail_with_the_fix(aws, cli, tmp_path):
    old, new = pipeline_snapshot(), pipeline_snapshot()
    publish(old)
    publish(new)
    dist = write_manifests(tmp_path / "dist", old)

    result = cli("doctor", "--manifests-dir", str(dist))

    assert result.exit_code == 1
    assert statuses(result.stdout)["generated EC2NodeClass uses it"] == "FAIL"
    assert f"references {old}, not {new}" in result.stdout
    assert "fix: make update-manifests && make deploy-apps" in result.stdout
    assert result.stderr.strip() == "error: doctor: 1 check(s) failed"


def test_nothing_published_fails_the_first_check_and_skips_the_rest(aws, cli, tmp_path):
    result = cli("doctor", "--manifests-dir", str(tmp_path))

    assert result.exit_code == 1
    marks = statuses(result.stdout)
    assert marks["snapshot parameter is set"] == "FAIL"
    assert {marks[name] for name, _ in doctor_ops.CHECKS[1:]} == {"SKIP"}
    assert "fix: build and publish one: make create-snapshot" in result.stdout


def test_deleted_snapshot_and_stale_metadata_fail(aws, cli, tmp_path):
    old, new = pipeline_snapshot(), pipeline_snapshot()
    publish(old)
    boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAM, Value=new, Type="String", Overwrite=True)  # ID without metadata
    boto3.client("ec2", region_name=REGION).delete_snapshot(SnapshotId=new)

    result = cli("doctor", "--manifests-dir", str(write_manifests(tmp_path / "dist", new)))

    marks = statuses(result.stdout)
    assert result.exit_code == 1
    assert marks["metadata matches the snapshot ID"] == "FAIL" and marks["snapshot exists and is completed"] == "FAIL"
    assert f"{new} does not exist" in result.stdout


# --- cluster checks: fake kubectl and EKS (moto has no Pod Identity API), real moto EC2/SSM/CFN -------


class FakeKubectl:
    def __init__(self, responses: dict[tuple[str, ...], dict]):
        self.responses = responses

    def get_json(self, *args: str) -> dict:
        if args not in self.responses:
            raise OperatorError(f"kubectl {' '.join(args)} failed: NotFound")
        return self.responses[args]


class FakeEks:
    def __init__(self, role_arn: str | None):
        self.role_arn = role_arn

    def list_pod_identity_associations(self, clusterName: str, namespace: str, serviceAccount: str) -> dict:
        ok = (clusterName, namespace, serviceAccount) == (CONFIG.clusterName, CONFIG.vllmNamespace, CONFIG.vllmServiceAccount)
        return {"associations": [{"associationId": "a-1"}] if ok and self.role_arn else []}

    def describe_pod_identity_association(self, clusterName: str, associationId: str) -> dict:
        return {"association": {"roleArn": self.role_arn}}


def gpu_instance(snapshot_id: str | None) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    ami = ec2.register_image(Name="bottlerocket-aws-k8s-nvidia", Architecture="x86_64", RootDeviceName="/dev/xvda")["ImageId"]
    ebs = {"SnapshotId": snapshot_id, "VolumeSize": 100} if snapshot_id else {"VolumeSize": 100}
    return ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="g5.xlarge",
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvdb", "Ebs": ebs}])["Instances"][0]["InstanceId"]


def cluster_responses(snap: str, instance: str, *, pulled: bool = False, identity: bool = True) -> dict:
    ns, sa = CONFIG.vllmNamespace, CONFIG.vllmServiceAccount
    nodeclass = {"spec": {"blockDeviceMappings": [{"deviceName": "/dev/xvdb", "ebs": {"snapshotID": snap}}]}}
    env = [{"name": doctor_ops.POD_IDENTITY_ENV, "value": "http://169.254.170.23/v1/credentials"}] if identity else []
    pod = {"metadata": {"name": "vllm-abc"}, "spec": {"containers": [{"name": "vllm", "env": env}]}}
    message = ('Successfully pulled image "vllm/vllm-openai:v0.11.0" in 4m2s' if pulled
               else 'Container image "vllm/vllm-openai@sha256:aa" already present on machine')
    event = {"reason": "Pulled", "message": message, "involvedObject": {"kind": "Pod", "name": "vllm-abc"}}
    return {
        ("get", "ec2nodeclass", names.GPU_NODECLASS): nodeclass,
        ("get", "nodes", "-l", f"karpenter.sh/nodepool={names.GPU_NODEPOOL}"): {
            "items": [{"metadata": {"name": "ip-10-40-1-1"}, "spec": {"providerID": f"aws:///{REGION}a/{instance}"}}]},
        ("get", "pods", "-n", ns, "-l", f"app={names.VLLM_APP_LABEL}"): {"items": [pod]},
        ("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=Pod"): {"items": [event]},
        ("get", "serviceaccount", "-n", ns, sa): {"metadata": {"name": sa}},
    }


def run(snap: str, dist: Path, kubectl: FakeKubectl, role_arn: str | None = ROLE_ARN) -> dict[str, doctor_ops.CheckResult]:
    ctx = doctor_ops.DoctorContext(
        config=CONFIG, ssm=boto3.client("ssm", region_name=REGION), ec2=boto3.client("ec2", region_name=REGION),
        cfn=boto3.client("cloudformation", region_name=REGION), eks=FakeEks(role_arn), manifests_dir=dist, kubectl=kubectl,
    )
    return {r.name: r for r in doctor_ops.run_checks(ctx)}


@pytest.fixture
def healthy(aws, tmp_path):
    snap = pipeline_snapshot()
    publish(snap)
    create_stack_with_outputs(names.CLUSTER_STACK, {names.OUTPUT_VLLM_ROLE_ARN: ROLE_ARN})
    return snap, write_manifests(tmp_path / "dist", snap)


def test_cluster_checks_pass_on_a_healthy_cluster(healthy):
    snap, dist = healthy
    results = run(snap, dist, FakeKubectl(cluster_responses(snap, gpu_instance(snap))))

    # the serving check needs a model to answer: tests/coldstart/test_chat_commands.py runs it against a fake vLLM
    expected = {name: "skip" if check is doctor_ops.check_serving else "pass" for name, check in doctor_ops.CHECKS}
    assert {name: r.status for name, r in results.items()} == expected


def test_node_from_another_snapshot_fails_with_the_drift_fix(healthy):
    snap, dist = healthy
    results = run(snap, dist, FakeKubectl(cluster_responses(snap, gpu_instance(None))))

    node = results["GPU nodes restored from it"]
    assert node.status == "fail" and "ip-10-40-1-1" in node.detail and "nodeclaim" in node.fix


def test_pulled_image_fails(healthy):
    snap, dist = healthy
    results = run(snap, dist, FakeKubectl(cluster_responses(snap, gpu_instance(snap), pulled=True)))

    check = results["vLLM image was already present"]
    assert check.status == "fail" and "Successfully pulled" in check.detail


def test_wrong_or_missing_model_role_fails(healthy):
    snap, dist = healthy
    responses = cluster_responses(snap, gpu_instance(snap))

    assert run(snap, dist, FakeKubectl(responses), role_arn="arn:aws:iam::123456789012:role/other")[
        "vLLM pods carry the model-read role"].status == "fail"
    assert run(snap, dist, FakeKubectl(responses), role_arn=None)["vLLM pods carry the model-read role"].status == "fail"
    no_env = run(snap, dist, FakeKubectl(cluster_responses(snap, gpu_instance(snap), identity=False)))
    assert no_env["vLLM pods carry the model-read role"].status == "fail"
    assert "rollout restart" in no_env["vLLM pods carry the model-read role"].fix


def test_no_gpu_node_skips_rather_than_fails(healthy):
    snap, dist = healthy
    responses = cluster_responses(snap, "i-unused")
    responses[("get", "nodes", "-l", f"karpenter.sh/nodepool={names.GPU_NODEPOOL}")] = {"items": []}

    assert run(snap, dist, FakeKubectl(responses))["GPU nodes restored from it"].status == "skip"
