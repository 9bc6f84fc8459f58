"""Infrastructure tests on the synthesized templates of the real app: what matters, not counts."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from settings import names
from settings.config import load_default_config
from tests.template_assertions import described, only_resource, role_described

pytestmark = pytest.mark.synth
CFG = load_default_config()
KARPENTER_CHART = {"Properties": {"Chart": Match.string_like_regexp("karpenter$")}}  # not karpenter-crd


@pytest.fixture(scope="module")
def storage(synthesized_app) -> Template:
    return Template.from_json(synthesized_app.template(names.STORAGE_STACK))


@pytest.fixture(scope="module")
def cluster(synthesized_app) -> Template:
    return Template.from_json(synthesized_app.template(names.CLUSTER_STACK))


MODEL_BUCKET = {"Properties": {"LoggingConfiguration": Match.any_value()}}  # the only bucket with access logs


def _model_bucket(storage: Template) -> tuple[str, dict]:
    return only_resource(storage, "AWS::S3::Bucket", MODEL_BUCKET)


def test_model_bucket_is_encrypted_private_logged_and_retained(storage: Template) -> None:
    logical, bucket = _model_bucket(storage)
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    storage.has_resource_properties("AWS::S3::Bucket", {"LoggingConfiguration": Match.any_value(), "LifecycleConfiguration": {
        "Rules": Match.array_with([Match.object_like({"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})])}})
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"] != logical


def test_model_bucket_denies_plain_http(storage: Template) -> None:
    logical, _ = _model_bucket(storage)
    bucket_ref = {"Bucket": Match.exact({"Ref": logical})}
    only_resource(storage, "AWS::S3::BucketPolicy", {"Properties": bucket_ref})
    storage.has_resource_properties("AWS::S3::BucketPolicy", {**bucket_ref, "PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Action": "s3:*", "Condition": Match.exact({"Bool": {"aws:SecureTransport": "false"}})})])}})


def test_cluster_is_eks_v2_native_without_auto_mode_in_private_subnets(cluster: Template) -> None:
    _, eks = only_resource(cluster, "AWS::EKS::Cluster")
    props = eks["Properties"]
    assert props["Version"] == CFG.kubernetesVersion
    assert props["Name"] == CFG.clusterName
    # Auto Mode would be ComputeConfig.Enabled=true; its node classes cannot restore a data-volume snapshot.
    assert props.get("ComputeConfig", {}).get("Enabled", False) is False
    assert props["AccessConfig"]["AuthenticationMode"] in ("API", "API_AND_CONFIG_MAP")
    assert props["EncryptionConfig"][0]["Resources"] == ["secrets"]
    assert {t["Type"] for t in props["Logging"]["ClusterLogging"]["EnabledTypes"]} >= {"api", "audit", "authenticator"}
    private_ids = _private_subnet_ids(cluster)
    assert {s["Ref"] for s in props["ResourcesVpcConfig"]["SubnetIds"]} <= private_ids


def _private_subnet_ids(cluster: Template) -> set[str]:
    private = {"Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": "Private"}])}
    return set(cluster.find_resources("AWS::EC2::Subnet", {"Properties": private}))


def test_system_node_group_is_small_bottlerocket_in_private_subnets(cluster: Template) -> None:
    _, ng = only_resource(cluster, "AWS::EKS::Nodegroup")
    props = ng["Properties"]
    assert props["AmiType"] == "BOTTLEROCKET_x86_64"
    assert props["ScalingConfig"]["DesiredSize"] == CFG.systemNodeCount
    assert {s["Ref"] for s in props["Subnets"]} <= _private_subnet_ids(cluster)


def test_private_subnets_and_node_security_group_carry_the_discovery_tag(cluster: Template) -> None:
    subnets = cluster.find_resources("AWS::EC2::Subnet")
    for logical in _private_subnet_ids(cluster):
        tags = {t["Key"]: t["Value"] for t in subnets[logical]["Properties"]["Tags"]}
        assert tags[names.DISCOVERY_TAG] == CFG.clusterName
    public = [v for k, v in subnets.items() if k not in _private_subnet_ids(cluster)]
    assert public and all(v["Properties"]["MapPublicIpOnLaunch"] is False for v in public)
    assert all(names.DISCOVERY_TAG not in {t["Key"] for t in v["Properties"]["Tags"]} for v in public)
    cluster.resource_properties_count_is("AWS::EC2::SecurityGroup", {
        "Tags": Match.array_with([Match.exact({"Key": names.DISCOVERY_TAG, "Value": CFG.clusterName})])}, 1)


def test_s3_gateway_endpoint_keeps_weight_streaming_off_nat(cluster: Template) -> None:
    endpoints = cluster.find_resources("AWS::EC2::VPCEndpoint").values()
    assert any(e["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"
               and "s3" in json.dumps(e["Properties"]["ServiceName"]) for e in endpoints)


def test_vllm_role_trust_is_limited_to_its_namespace_and_service_account(cluster: Template) -> None:
    logical, role = role_described(cluster, "vLLM pods")
    [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    cond = statement["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/kubernetes-namespace"] == CFG.vllmNamespace
    assert cond["aws:RequestTag/kubernetes-service-account"] == CFG.vllmServiceAccount
    assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]
    _, assoc = only_resource(cluster, "AWS::EKS::PodIdentityAssociation",
                             {"Properties": {"RoleArn": Match.exact({"Fn::GetAtt": [logical, "Arn"]})}})
    assert assoc["Properties"]["Namespace"] == CFG.vllmNamespace
    assert assoc["Properties"]["ServiceAccount"] == CFG.vllmServiceAccount


def test_vllm_role_reads_only_the_model_prefix_and_the_compile_cache(cluster: Template) -> None:
    # (writes under compile-cache/ only: tests/stacks/test_compile_cache_iam.py)
    logical, _ = role_described(cluster, "vLLM pods")
    policies = cluster.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": Match.array_with([{"Ref": logical}])}}).values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert all(s["Effect"] == "Allow" for s in statements)
    get = next(s for s in statements if s.get("Sid") == "ReadModelObjects")
    assert get["Action"] == "s3:GetObject" and json.dumps(get["Resource"]).endswith(f'/{CFG.modelPrefix}/*"]]}}')
    listing = next(s for s in statements if s["Action"] == "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{CFG.modelPrefix}/", f"{CFG.modelPrefix}/*",
                                                                 f"{names.COMPILE_CACHE_PREFIX}/", f"{names.COMPILE_CACHE_PREFIX}/*"]}}
    assert {"Fn::ImportValue": names.EXPORT_MODEL_BUCKET_ARN} in listing["Resource"].values() or \
        listing["Resource"] == {"Fn::ImportValue": names.EXPORT_MODEL_BUCKET_ARN}


def test_karpenter_controller_mutations_are_tag_scoped(cluster: Template) -> None:
    policies = list(cluster.find_resources("AWS::IAM::ManagedPolicy", described("Karpenter controller")).values())
    assert len(policies) == 6  # the reference's six managed policies
    statements = {s["Sid"]: s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]}
    owned = f"kubernetes.io/cluster/{CFG.clusterName}"
    for sid in ("AllowScopedEC2InstanceActionsWithTags", "AllowScopedResourceCreationTagging",
                "AllowScopedInstanceProfileCreationActions", "AllowScopedInstanceProfileTagActions"):
        assert statements[sid]["Condition"]["StringEquals"][f"aws:RequestTag/{owned}"] == "owned"
        assert statements[sid]["Condition"]["StringEquals"]["aws:RequestTag/eks:eks-cluster-name"] == CFG.clusterName
    for sid in ("AllowScopedDeletion", "AllowScopedEC2LaunchTemplateAccessActions", "AllowScopedResourceTagging"):
        assert statements[sid]["Condition"]["StringEquals"][f"aws:ResourceTag/{owned}"] == "owned"
        assert statements[sid]["Condition"]["StringLike"]["aws:ResourceTag/karpenter.sh/nodepool"] == "*"
    # TagInstanceProfile only on this cluster's profiles (resource tags), and only with its tags (request tags).
    assert statements["AllowScopedInstanceProfileTagActions"]["Condition"]["StringEquals"][f"aws:ResourceTag/{owned}"] == "owned"
    assert statements["AllowScopedInstanceProfileTagActions"]["Action"] == "iam:TagInstanceProfile"
    assert statements["AllowPassingInstanceRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}
    assert "ec2:DescribeInstanceStatus" in statements["AllowRegionalReadActions"]["Action"]
    # Nothing mutating is granted on "*".
    for s in statements.values():
        if s["Resource"] == "*":
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            assert all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions), s["Sid"]
    for policy in policies:  # each under IAM's 6,144-character limit even with the intrinsics' overhead
        assert len(json.dumps(policy["Properties"]["PolicyDocument"], separators=(",", ":"))) < 6144


def test_karpenter_is_installed_from_its_chart_with_interruption_queue(cluster: Template) -> None:
    _, chart = only_resource(cluster, "Custom::AWSCDK-EKS-HelmChart", KARPENTER_CHART)
    assert chart["Properties"]["Version"] == CFG.karpenterVersion
    assert chart["Properties"]["Namespace"] == CFG.karpenterNamespace
    values = json.dumps(chart["Properties"]["Values"])
    assert CFG.clusterName in values and "interruptionQueue" in values
    _, queue = only_resource(cluster, "AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    patterns = [r["Properties"]["EventPattern"]["detail-type"][0] for r in cluster.find_resources("AWS::Events::Rule").values()]
    assert "EC2 Spot Instance Interruption Warning" in patterns
    cluster.has_resource_properties("AWS::EKS::PodIdentityAssociation", {
        "Namespace": CFG.karpenterNamespace, "ServiceAccount": names.KARPENTER_SERVICE_ACCOUNT})


def test_karpenter_node_role_has_an_ec2_access_entry(cluster: Template) -> None:
    node_role, _ = only_resource(cluster, "AWS::IAM::Role", {"Properties": {"RoleName": f"KarpenterNodeRole-{CFG.clusterName}"}})
    cluster.has_resource_properties("AWS::EKS::AccessEntry", {
        "Type": "EC2_LINUX", "PrincipalArn": Match.exact({"Fn::GetAtt": [node_role, "Arn"]})})


def test_every_stack_is_environment_agnostic_by_default(synthesized_app) -> None:
    manifest = json.loads((synthesized_app.outdir / "manifest.json").read_text())
    for name in synthesized_app.stack_names:
        assert manifest["artifacts"][name]["environment"] == "aws://unknown-account/unknown-region"


def test_whole_app_passes_cdk_nag_with_reasoned_acknowledgements(synthesized_app) -> None:
    report = json.loads((synthesized_app.outdir / "validation-report.json").read_text())
    assert all(p["conclusion"] != "failure" for p in report.get("pluginReports", []))
    # Every acknowledgement written to the cloud assembly carries a reason a reviewer can read.
    acknowledged = 0
    for name in synthesized_app.stack_names:
        metadata = json.loads((synthesized_app.outdir / f"{name}.metadata.json").read_text())
        for entries in metadata.values():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        if "AwsSolutions-" in rule:  # CDK itself acknowledges some cfn-lint rules too
                            acknowledged += 1
                            assert len(reason) >= 40, (rule, reason)
    assert acknowledged > 0


def test_kubectl_provider_reaches_the_api_privately(cluster: Template) -> None:
    """The Helm/kubectl handler must not depend on the public endpoint, which clusterEndpointCidrs may close."""
    # the handler is known by its logical ID only (a pattern cannot match IDs)
    handlers = [r for k, r in cluster.find_resources("AWS::Lambda::Function").items() if "KubectlProviderHandler" in k]
    assert handlers
    for handler in handlers:
        subnets = {s["Ref"] for s in handler["Properties"]["VpcConfig"]["SubnetIds"]}
        assert subnets and subnets <= _private_subnet_ids(cluster)
    _, eks = only_resource(cluster, "AWS::EKS::Cluster")
    assert eks["Properties"]["ResourcesVpcConfig"]["EndpointPrivateAccess"] is True


def test_karpenter_crds_come_first_and_the_controller_waits_for_its_identity_and_nodes(cluster: Template) -> None:
    helm = "Custom::AWSCDK-EKS-HelmChart"
    crd_id, crd = only_resource(cluster, helm, {"Properties": {"Chart": Match.string_like_regexp("/karpenter-crd$")}})
    _, main = only_resource(cluster, helm, {"Properties": {"Chart": Match.string_like_regexp("/karpenter$")}})
    assert main["Properties"]["SkipCrds"] is True
    assert crd["Properties"]["Version"] == CFG.karpenterVersion
    depends = set(main.get("DependsOn", []))
    assoc, _ = only_resource(cluster, "AWS::EKS::PodIdentityAssociation",
                             {"Properties": {"ServiceAccount": names.KARPENTER_SERVICE_ACCOUNT}})
    agent, _ = only_resource(cluster, "AWS::EKS::Addon", {"Properties": {"AddonName": "eks-pod-identity-agent"}})
    nodegroup, _ = only_resource(cluster, "AWS::EKS::Nodegroup")
    assert {crd_id, assoc, agent, nodegroup} <= depends


def test_operator_access_without_roles_warns_and_outputs_no_command(synthesized_app) -> None:
    template = Template.from_json(synthesized_app.template(names.CLUSTER_STACK))
    template.has_output(names.OUTPUT_KUBECONFIG_COMMAND, {"Value": Match.string_like_regexp("none:")})
    # by logical ID across every resource type: no assertions query takes IDs, so this reads the resources whole
    assert not [k for k in template.to_json()["Resources"] if "OperatorAdmin" in k]


def test_cluster_admin_roles_get_access_entries_and_a_kubeconfig_output() -> None:
    from aws_cdk import App

    from stacks.cluster_stack import ClusterStack

    role = "arn:aws:iam::123456789012:role/Operators"
    app = App()
    stack = ClusterStack(app, "Admins", config=load_default_config(clusterAdminRoleArns=[role], region="us-west-2",
                                                                   account="123456789012"),
                         env={"account": "123456789012", "region": "us-west-2"})
    template = Template.from_stack(stack)
    _, access_entry = only_resource(template, "AWS::EKS::AccessEntry", {"Properties": {"PrincipalArn": role}})
    entry = access_entry["Properties"]
    [policy] = entry["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "cluster"}
    assert json.dumps(policy["PolicyArn"]).endswith(':eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"]]}')
    output = template.find_outputs(names.OUTPUT_KUBECONFIG_COMMAND)[names.OUTPUT_KUBECONFIG_COMMAND]["Value"]
    rendered = json.dumps(output)
    assert "aws eks update-kubeconfig --name " in rendered and f"--role-arn {role}" in rendered
    assert "--region us-west-2" in rendered


def test_eks_auth_endpoint_comes_with_the_interface_endpoints() -> None:
    from aws_cdk import App

    from stacks.cluster_stack import ClusterStack

    app = App()
    stack = ClusterStack(app, "Endpoints", config=load_default_config(vpcInterfaceEndpoints=True))
    services = [json.dumps(e["Properties"]["ServiceName"])
                for e in Template.from_stack(stack).find_resources("AWS::EC2::VPCEndpoint").values()]
    assert any(".eks-auth" in s for s in services), services


def test_vpc_cni_add_on_enforces_network_policies(cluster: Template) -> None:
    only_resource(cluster, "AWS::EKS::Addon", {"Properties": {"AddonName": "vpc-cni"}})
    cluster.has_resource_properties("AWS::EKS::Addon", {
        "AddonName": "vpc-cni", "ConfigurationValues": Match.serialized_json({"enableNetworkPolicy": "true"}),
        "ResolveConflicts": "OVERWRITE"})
