"""The bottom layer: configuration (``config``), shared names (``names``), the version table
(``versions``), probe arithmetic (``probe_timing``) and Parameter Store access (``parameter_store``).

Everything above imports from here; nothing here imports from ``coldstart``, ``k8s_charts``,
``stacks`` or ``lambdas`` (``tests/test_layers.py`` enforces it). It ships inside the pipeline's
Lambda asset, so it needs only the standard library (and botocore, which the Lambda runtime has).
"""
