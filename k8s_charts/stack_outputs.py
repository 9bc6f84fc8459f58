"""Deployment values the standalone synth reads from the deployed stacks' CloudFormation outputs.

The Karpenter node role name, the model bucket and the vLLM role ARN are created by the CDK
stacks; after ``cdk deploy`` their outputs (names in ``coldstart.names``) are the source of truth.
Flags override them; without AWS access the synth falls back to documented defaults.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from settings import names

STACKS = (names.CLUSTER_STACK, names.STORAGE_STACK)


def read_stack_outputs(cfn: Any, stack_names: tuple[str, ...] = STACKS) -> dict[str, str]:
    """OutputKey -> OutputValue across the given stacks; a stack that does not exist is skipped.

    Other botocore errors (no credentials, no endpoint, access denied) propagate.
    """
    outputs: dict[str, str] = {}
    for stack in stack_names:
        try:
            described = cfn.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as err:
            if "does not exist" in str(err.response.get("Error", {}).get("Message", "")):
                continue
            raise
        for s in described:
            for output in s.get("Outputs", []):
                outputs.setdefault(output["OutputKey"], output["OutputValue"])
    return outputs
