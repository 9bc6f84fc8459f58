"""IAM for the S3-shared compile cache, evaluated on the synthesized cluster template: the vLLM role may
write under compile-cache/ only (compileCachePublish=pods) or nowhere (readonly, where a separate writer
role bound to the warm-cache service account publishes). Nothing outside the prefixes is allowed.

The evaluator is deliberately small: Allow statements only (the template has no Deny for these roles),
action and resource wildcards as IAM matches them (``*`` any run of characters, ``?`` one),
ListBucket's ``s3:prefix`` StringLike condition.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from settings import names
from settings.config import load_default_config
from tests.template_assertions import described, only_resource, role_described

pytestmark = pytest.mark.synth
CFG = load_default_config()
BUCKET_ARN = "arn:aws:s3:::models"
MODEL = CFG.modelPrefix
CACHE = names.COMPILE_CACHE_PREFIX


def _flat(value: Any) -> str:
    """An ARN from the template with the imported bucket ARN made concrete."""
    if isinstance(value, str):
        return value
    if "Fn::ImportValue" in value:
        assert value["Fn::ImportValue"] == names.EXPORT_MODEL_BUCKET_ARN
        return BUCKET_ARN
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_flat(p) for p in parts)
    raise AssertionError(f"unexpected intrinsic {value}")


def statements_of(template: Template, description_fragment: str) -> list[dict[str, Any]]:
    """Every statement granted to the one role so described; it must have no managed or inline policies."""
    role_id, role = role_described(template, description_fragment)
    assert not role["Properties"].get("ManagedPolicyArns") and not role["Properties"].get("Policies"), role
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": Match.array_with([{"Ref": role_id}])}})
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(statements: list[dict[str, Any]], action: str, resource: str, prefix: str | None = None) -> bool:
    for s in statements:
        assert s["Effect"] == "Allow"
        if not any(fnmatch.fnmatchcase(action, a) for a in _listify(s["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, _flat(r)) for r in _listify(s["Resource"])):
            continue
        condition = s.get("Condition")
        if condition:
            assert set(condition) == {"StringLike"} and set(condition["StringLike"]) == {"s3:prefix"}
            if prefix is None or not any(fnmatch.fnmatchcase(prefix, p) for p in _listify(condition["StringLike"]["s3:prefix"])):
                continue
        return True
    return False


def obj(key: str) -> str:
    return f"{BUCKET_ARN}/{key}"


WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl", "s3:PutBucketPolicy")
OUTSIDE = (f"{MODEL}/config.json", f"{MODEL}/model.safetensors", "other/x", f"{CACHE}x/y", f"{CACHE}", "x/compile-cache/y")


@pytest.fixture(scope="module")
def pods(synthesized_app) -> Template:
    assert CFG.compileCacheS3 and CFG.compileCachePublish == "pods"  # the defaults
    return Template.from_json(synthesized_app.template(names.CLUSTER_STACK))


@pytest.fixture(scope="module")
def readonly(tmp_path_factory: pytest.TempPathFactory) -> Template:
    from app import build_app, new_app

    outdir = tmp_path_factory.mktemp("cdk.out.readonly")
    app = new_app(outdir=str(outdir))
    build_app(app, load_default_config(compileCachePublish="readonly"))
    app.synth()  # cdk-nag findings on the writer role must be acknowledged too
    return Template.from_json(json.loads((outdir / f"{names.CLUSTER_STACK}.template.json").read_text()))


def test_pods_mode_vllm_role_writes_only_under_the_cache_prefix(pods) -> None:
    vllm = statements_of(pods, "vLLM pods")
    cache_key = f"{CACHE}/sha256-abc/manifests/0123abcdef.json"
    # reads: the model and the cache
    assert allowed(vllm, "s3:GetObject", obj(f"{MODEL}/model.safetensors"))
    assert allowed(vllm, "s3:GetObject", obj(cache_key))
    assert allowed(vllm, "s3:ListBucket", BUCKET_ARN, prefix=f"{CACHE}/sha256-abc/manifests/")
    assert allowed(vllm, "s3:ListBucket", BUCKET_ARN, prefix=f"{MODEL}/")
    # writes: the cache prefix only
    assert allowed(vllm, "s3:PutObject", obj(cache_key))
    assert allowed(vllm, "s3:AbortMultipartUpload", obj(f"{CACHE}/sha256-abc/blobs/{'a' * 64}"))
    for key in OUTSIDE:
        assert not any(allowed(vllm, a, obj(key)) for a in WRITES), key
    assert not allowed(vllm, "s3:GetObject", obj("other/x")) and not allowed(vllm, "s3:GetObject", obj(f"{CACHE}x/y"))
    assert not allowed(vllm, "s3:ListBucket", BUCKET_ARN, prefix="") and not allowed(vllm, "s3:ListBucket", BUCKET_ARN, prefix="other/")
    assert not any(allowed(vllm, a, obj(cache_key)) for a in ("s3:DeleteObject", "s3:PutObjectAcl", "s3:GetObjectAcl"))
    assert not any(allowed(vllm, a, BUCKET_ARN) for a in ("s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutLifecycleConfiguration"))
    actions = sorted({a for s in vllm for a in _listify(s["Action"])})
    assert actions == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    # and there is no writer role in this mode
    pods.resource_properties_count_is("AWS::IAM::Role", described("compile-cache writer")["Properties"], 0)


def test_readonly_mode_vllm_role_cannot_write_and_only_the_warm_cache_writer_can(readonly) -> None:
    vllm = statements_of(readonly, "vLLM pods")
    cache_key = f"{CACHE}/sha256-abc/manifests/0123abcdef.json"
    assert allowed(vllm, "s3:GetObject", obj(cache_key))
    assert not any(allowed(vllm, a, obj(k)) for a in WRITES for k in (cache_key, *OUTSIDE))
    writer = statements_of(readonly, "compile-cache writer")
    assert allowed(writer, "s3:PutObject", obj(cache_key)) and allowed(writer, "s3:GetObject", obj(f"{MODEL}/config.json"))
    for key in OUTSIDE:
        assert not any(allowed(writer, a, obj(key)) for a in WRITES), key
    # the writer role is bound to the warm-cache service account only
    _, association = only_resource(readonly, "AWS::EKS::PodIdentityAssociation",
                                   {"Properties": {"ServiceAccount": names.COMPILE_CACHE_WRITER_SERVICE_ACCOUNT}})
    assoc = association["Properties"]
    assert assoc["Namespace"] == CFG.vllmNamespace
    logical, role = role_described(readonly, "compile-cache writer")
    assert assoc["RoleArn"] == {"Fn::GetAtt": [logical, "Arn"]}
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
    assert trust["aws:RequestTag/kubernetes-service-account"] == names.COMPILE_CACHE_WRITER_SERVICE_ACCOUNT


def test_cache_off_grants_the_model_prefix_only() -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_s3 as s3

    from stacks.constructs.model_reader import ModelReaderRole

    stack = Stack(App(), "T")
    bucket = s3.Bucket.from_bucket_arn(stack, "B", BUCKET_ARN)
    ModelReaderRole(stack, "R", cluster_name="c", cluster_arn="arn:aws:eks:us-west-2:123456789012:cluster/c", namespace="vllm",
                    service_account="vllm", bucket=bucket, prefix=MODEL, compile_cache=False)
    statements = statements_of(Template.from_stack(stack), "vLLM pods")
    assert not allowed(statements, "s3:GetObject", obj(f"{CACHE}/x"))
    assert not any(allowed(statements, a, obj(f"{CACHE}/x")) for a in WRITES)
    assert allowed(statements, "s3:GetObject", obj(f"{MODEL}/config.json"))
