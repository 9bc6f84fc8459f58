"""IAM roles for Kubernetes service accounts through EKS Pod Identity, with a trust policy that
admits only the intended cluster, namespace and service account."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_eks as eks_l1
from aws_cdk import aws_iam as iam
from constructs import Construct

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def pod_identity_principal(*, cluster_arn: str, namespace: str, service_account: str) -> iam.IPrincipal:
    """pods.eks.amazonaws.com, limited by the session tags EKS Pod Identity sets on every assume.

    EKS attaches ``kubernetes-namespace`` and ``kubernetes-service-account`` session tags (documented
    by AWS; confirmed here only against the docs, not a live cluster), so even a mistaken association
    of this role with another service account cannot assume it.
    """
    return iam.PrincipalWithConditions(
        iam.ServicePrincipal(POD_IDENTITY_PRINCIPAL).with_session_tags(),
        {
            "StringEquals": {
                "aws:SourceAccount": Aws.ACCOUNT_ID,
                "aws:RequestTag/kubernetes-namespace": namespace,
                "aws:RequestTag/kubernetes-service-account": service_account,
            },
            "ArnEquals": {"aws:SourceArn": cluster_arn},
        },
    )


class PodIdentityRole(Construct):
    """A role plus its Pod Identity association for one namespace/service account."""

    def __init__(self, scope: Construct, construct_id: str, *, cluster_name: str, cluster_arn: str,
                 namespace: str, service_account: str, description: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self, "Role", description=description,
            assumed_by=pod_identity_principal(cluster_arn=cluster_arn, namespace=namespace, service_account=service_account))
        self.association = eks_l1.CfnPodIdentityAssociation(
            self, "Association", cluster_name=cluster_name, namespace=namespace,
            service_account=service_account, role_arn=self.role.role_arn)
