"""CDK deployment of the cdk8s charts (``coldstart:manifestsDeployment = cdk``).

The same ``build_charts`` as ``make update-manifests``, applied by the cluster's kubectl provider
after Karpenter (whose CRDs the EC2NodeClass and NodePool need) is installed, and after the vLLM
Pod Identity association and its agent, so the first vLLM pod starts with its role.
"""

from __future__ import annotations

from collections.abc import Sequence

import cdk8s
from aws_cdk import Annotations, Stack
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IConstruct

from k8s_charts.charts import build_charts
from k8s_charts.published import PublishedSnapshot
from settings.config import AppConfig


class WorkloadManifests(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, cluster: eks.Cluster,
                 published: PublishedSnapshot | None, node_role_name: str, model_bucket_name: str,
                 after: Sequence[IConstruct]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        built = build_charts(cdk8s.App(), config, published, node_role_name=node_role_name,
                             model_bucket=model_bucket_name, account=stack.account, region=stack.region,
                             identity="pod-identity")
        self.manifests = []
        for chart in built.charts:
            manifest = cluster.add_cdk8s_chart(chart.node.id, chart)
            manifest.node.add_dependency(*after)
            self.manifests.append(manifest)
        # Nothing published is one of these notices ("WARNING: no image-cache snapshot is published yet"):
        # every synth path gets that warning from the charts' props, so it is not repeated here.
        for notice in built.notices:
            Annotations.of(self).add_warning_v2("vllm-coldstart:manifests", notice)
