"""Every synthesized object validates: custom resources against their CRD (schema + CEL rules),
built-in kinds against the Kubernetes schemas of the cluster's version (kubernetes-validate)."""

from __future__ import annotations

import copy
from dataclasses import replace

import kubernetes_validate
import pytest
from chart_helpers import published_fixture, synth
from crd_validation import cel_report, crd_schemas, is_custom, schema_errors

from settings import names
from settings.config import load_default_config

CFG = load_default_config()
# Scenarios covering every optional branch of the charts.
SCENARIOS = {
    "published": lambda: synth(CFG, published_fixture()),
    "unpublished": lambda: synth(CFG, None),
    "init-rate-irsa": lambda: synth(replace(CFG, volumeInitializationRate=300), published_fixture(),
                                    identity="irsa", vllm_role_arn="arn:aws:iam::123456789012:role/vllm-model-read"),
    "no-compile-cache-no-quantization": lambda: synth(replace(CFG, compileCacheOnNode=False, quantization="awq",
                                                              gpuCapacityTypes=("on-demand",), driftBudgetNodes=0), None),
    "s3-cache-readonly": lambda: synth(replace(CFG, compileCachePublish="readonly"), published_fixture()),
    "s3-cache-off-node-cache-off": lambda: synth(replace(CFG, compileCacheS3=False, compileCacheOnNode=False), published_fixture()),
    "override-without-metadata": lambda: synth(CFG, published_fixture(bottlerocket_version=None, images=(), platforms=(),
                                                                       metadata_source=None), account=None),
}


def _kubernetes_version() -> str:
    """kubernetes-validate's schema set for the cluster's minor version (it ships 1.25-1.37)."""
    return f"{CFG.kubernetesVersion}.0"


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest):
    manifests, _ = SCENARIOS[request.param]()
    return request.param, [o for objs in manifests.values() for o in objs]


def test_every_custom_resource_matches_its_crd_schema(scenario) -> None:
    name, objects = scenario
    custom = [o for o in objects if is_custom(o)]
    assert {o["kind"] for o in custom} == {"EC2NodeClass", "NodePool"}
    for obj in custom:
        assert schema_errors(obj) == [], f"{name}: {obj['kind']}"


def test_every_crd_cel_rule_on_our_fields_holds(scenario) -> None:
    name, objects = scenario
    for obj in (o for o in objects if is_custom(o)):
        report = cel_report(obj)
        assert report.failures == [], f"{name}: {obj['kind']}"
        # Not vacuous: the rules on the fields we set were actually evaluated.
        evaluated = "\n".join(report.evaluated)
        if obj["kind"] == "EC2NodeClass":
            assert "has(self.snapshotID) || has(self.volumeSize)" in evaluated
            assert "self.matches('^[a-zA-Z0-9]+@.+$')" in evaluated
            assert "(has(self.role) && !has(self.instanceProfile))" in evaluated
            assert "imageGCHighThresholdPercent > self.imageGCLowThresholdPercent" in evaluated
        else:
            assert "x.values.size() != 0" in evaluated
            assert "has(x.schedule) == has(x.duration)" in evaluated


def test_built_in_kinds_validate_against_the_clusters_kubernetes_version(scenario) -> None:
    name, objects = scenario
    built_in = [o for o in objects if not is_custom(o)]
    kinds = {o["kind"] for o in built_in}
    assert kinds - {"ConfigMap"} == {"Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    # the ConfigMap carries the compile-cache sync script, only with compileCacheS3
    [pod] = [o["spec"]["template"]["spec"] for o in built_in
             if o["kind"] == "Deployment" and o["metadata"]["name"] == names.VLLM_APP_LABEL]
    restores = [c for c in pod.get("initContainers", []) if c["name"] == names.COMPILE_CACHE_RESTORE_CONTAINER]
    assert ("ConfigMap" in kinds) == bool(restores)
    for obj in built_in:
        # strict: unknown fields are errors too. Raises ValidationError on failure.
        assert kubernetes_validate.validate(obj, _kubernetes_version(), strict=True) == CFG.kubernetesVersion


def test_reapplying_after_a_snapshot_is_published_passes_the_transition_rules() -> None:
    # Given the objects applied before any snapshot existed, and the ones synthesized after
    before, _ = synth(CFG, None)
    after, _ = synth(CFG, published_fixture())
    old = {o["kind"]: o for objs in before.values() for o in objs if is_custom(o)}
    for obj in (o for objs in after.values() for o in objs if is_custom(o)):
        report = cel_report(obj, old=old[obj["kind"]])
        # Then the update is allowed, and the immutability rules were checked (not skipped)
        assert report.failures == []
        if obj["kind"] == "NodePool":
            assert any("self.group == oldSelf.group" in r for r in report.evaluated)
            assert any("has(self.replicas) == has(oldSelf.replicas)" in r for r in report.evaluated)


# --- the validators themselves catch violations (so the passing tests above mean something) -----

@pytest.fixture(scope="module")
def custom_objects():
    manifests, _ = synth(CFG, published_fixture())
    return {o["kind"]: o for objs in manifests.values() for o in objs if is_custom(o)}


def _data_ebs(node_class):
    return next(m["ebs"] for m in node_class["spec"]["blockDeviceMappings"] if m["deviceName"] == "/dev/xvdb")


@pytest.mark.parametrize("mutate, message", [
    (lambda o: _data_ebs(o).pop("snapshotID") and _data_ebs(o).update(volumeInitializationRate=200),
     "snapshotID must be set when volumeInitializationRate is set"),
    (lambda o: o["spec"]["amiSelectorTerms"].append({"name": "other-ami"}),
     "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms"),
    (lambda o: o["spec"].update(instanceProfile="KarpenterNodeInstanceProfile"),
     "must specify exactly one of ['role', 'instanceProfile']"),
    (lambda o: o["spec"]["kubelet"].update(imageGCLowThresholdPercent=95),
     "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent"),
    (lambda o: o["spec"]["amiSelectorTerms"][0].update(alias="flatcar@v1.0.0"), "family is not supported"),
])
def test_cel_evaluation_rejects_invalid_node_classes(custom_objects, mutate, message) -> None:
    obj = copy.deepcopy(custom_objects["EC2NodeClass"])
    mutate(obj)
    assert any(message in f for f in cel_report(obj).failures), cel_report(obj).failures


def test_cel_evaluation_rejects_invalid_node_pools(custom_objects) -> None:
    pool = copy.deepcopy(custom_objects["NodePool"])
    pool["spec"]["template"]["spec"]["requirements"].append({"key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]})
    assert any('label "karpenter.sh/nodepool" is restricted' in f for f in cel_report(pool).failures)

    changed = copy.deepcopy(custom_objects["NodePool"])
    changed["spec"]["template"]["spec"]["nodeClassRef"]["group"] = "example.com"
    failures = cel_report(changed, old=custom_objects["NodePool"]).failures
    assert any("nodeClassRef.group is immutable" in f for f in failures)


def test_strict_schema_rejects_misspelt_and_out_of_range_fields(custom_objects) -> None:
    typo = copy.deepcopy(custom_objects["EC2NodeClass"])
    _data_ebs(typo)["snapshotId"] = _data_ebs(typo).pop("snapshotID")  # the API server would silently prune it
    assert any("snapshotId" in e for e in schema_errors(typo))

    slow = copy.deepcopy(custom_objects["EC2NodeClass"])
    _data_ebs(slow)["volumeInitializationRate"] = 50
    assert any("volumeInitializationRate" in e for e in schema_errors(slow))

    budget = copy.deepcopy(custom_objects["NodePool"])
    budget["spec"]["disruption"]["budgets"][0]["reasons"] = ["Expired"]
    assert schema_errors(budget)


def test_kubernetes_validate_rejects_an_unknown_field() -> None:
    manifests, _ = synth(CFG, None)
    deployment = copy.deepcopy(next(o for o in manifests["vllm"] if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["startupprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, _kubernetes_version(), strict=True)


def test_crds_are_the_v1_api() -> None:
    assert {(k[0], k[1]) for k in crd_schemas()} == {("karpenter.k8s.aws/v1", "EC2NodeClass"), ("karpenter.sh/v1", "NodePool")}
