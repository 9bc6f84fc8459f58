"""cdk8s charts for the GPU nodes (Karpenter EC2NodeClass + NodePool) and the vLLM workload.

Modules are named for what they make: ``nodeclass`` (EC2NodeClass), ``nodepool`` (NodePool),
``vllm`` (the vLLM Deployment and its neighbours).

Entry points:
- ``k8s_charts.charts.build_charts`` — the one function both the standalone synth and the CDK
  cluster stack call, so both paths produce the same objects.
- ``k8s_charts.synthesize.synthesize`` — a typed config in, ``dist/*.k8s.yaml`` out; called by
  ``python -m k8s_charts.synth`` (its flags), ``coldstart update-manifests`` and the rehearsal.
- ``k8s_charts.snapshot_source.read_snapshot_or_warn`` — the published snapshot, or a loud warning
  when Parameter Store cannot be read (every synth, and ``app.py``).
- ``k8s_charts.published.read_published`` — reads the published snapshot from Parameter Store
  (also used by the operator CLI's ``doctor``).

Importing this package is cheap; the cdk8s/jsii runtime starts only when a chart module is imported.
"""
