"""The snapshot pipeline's Lambda code: thin handlers (``handlers/``) over the step logic.

Deployed as one asset holding this package and ``settings`` (stacks/pipeline/functions.py), so the
handlers import ``lambdas.snapshot_pipeline...`` and ``settings...`` exactly as the tests do.
"""
