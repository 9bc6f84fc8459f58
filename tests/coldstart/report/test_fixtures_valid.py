"""The recorded fixtures are real-shaped: Pods and Events validate against the Kubernetes 1.33
schemas (strict: no unknown fields), NodeClaims against Karpenter's v1.14.1 CRD schema."""

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
CRD = FIXTURES / "karpenter.sh_nodeclaims.yaml"  # verbatim v1.14.1 copy, see fixtures/SOURCE.txt


def _objects(name: str):
    for path in sorted(FIXTURES.glob(f"*/{name}")):
        doc = json.loads(path.read_text())
        for obj in doc.get("items", [doc]):
            yield path.parent.name, obj


@pytest.mark.parametrize("name", ["pod.json", "events.json"])
def test_kubernetes_objects_validate(name):
    seen = 0
    for scenario, obj in _objects(name):
        try:
            kubernetes_validate.validate(obj, "1.33", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{scenario}/{name}: {exc}")
        seen += 1
    assert seen >= 4, f"expected objects from every scenario, saw {seen}"


def _nodeclaim_schema():
    crd = yaml.safe_load(CRD.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def test_nodeclaims_validate_against_the_crd():
    schema = _nodeclaim_schema()
    claims = list(_objects("nodeclaims.json"))
    assert len(claims) >= 4
    for scenario, obj in claims:
        try:
            jsonschema.validate(obj, schema)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{scenario}/nodeclaims.json: {exc.message} at {list(exc.absolute_path)}")
