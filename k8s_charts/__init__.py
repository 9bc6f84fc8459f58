"""cdk8s charts for the GPU nodes (Karpenter EC2NodeClass + NodePool) and the vLLM workload.

Entry points:
- ``k8s_charts.charts.build_charts`` — the one function both the standalone synth and the CDK
  cluster stack call, so both paths produce the same objects.
- ``k8s_charts.published.read_published`` — reads the published snapshot from Parameter Store
  (also used by the operator CLI's ``doctor``).
- ``python -m k8s_charts.synth`` — standalone synthesis into ``dist/*.k8s.yaml``.

Importing this package is cheap; the cdk8s/jsii runtime starts only when a chart module is imported.
"""
