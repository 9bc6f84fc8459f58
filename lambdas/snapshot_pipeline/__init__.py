"""The snapshot pipeline's Lambda code. Deployed as one asset rooted at ``lambdas/``.

Modules here use relative imports only, so the package works both as ``lambdas.snapshot_pipeline``
(tests, CDK) and as ``snapshot_pipeline`` (the Lambda runtime, asset root ``lambdas/``).
"""
