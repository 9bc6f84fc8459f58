"""Offline emulator of the snapshot pipeline: a TEST AND REHEARSAL SHIM, never used in production.

It runs the REAL state-machine definition (taken from the synthesized PipelineStack template)
in moto's Step Functions interpreter, invoking the REAL Lambda handlers in-process, against moto's
EC2/SSM/ECR. Used by tests/lambdas (with ``moto.mock_aws``) and by the operator CLI's local
rehearsal (with a ``moto.server.ThreadedMotoServer`` on 127.0.0.1 in the same process).

What moto cannot do is filled in here, explicitly, by wrapping the handlers' boto3 clients
(``lambdas.snapshot_pipeline.core.clients.set_factory``):
- SSM agent status (``describe_instance_information`` is not implemented in moto);
- the pull command's checks and outcome (moto neither checks a document's parameters nor runs it, and
  reports every command Success with no output): the emulator refuses parameters the document's
  allowedPattern refuses, and "runs" the command by printing the verification lines the real script would print;
- Fast Snapshot Restore (not implemented in moto);
- injected faults: throttling, insufficient capacity, snapshot ``error``, command failures.
moto cannot run Lambda code without Docker, so ``in_process_lambdas`` patches
``moto.awslambda.models.LambdaFunction.invoke`` to import and call the handler in this process.

Nothing here imports pytest. Typical use::

    template = synthesize_pipeline_template(load_default_config())
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), in_process_lambdas():
        gaps = AwsGaps(region="us-west-2")
        with gaps.installed():
            seed_bottlerocket("us-west-2", "1.36")
            seed_ecr_image(boto3.client("ecr", region_name="us-west-2"), "vllm/vllm-openai", "v0.34.0")
            pipeline = LocalPipeline(template, region="us-west-2").deploy()
            result = pipeline.run({})

For the rehearsal against a ThreadedMotoServer: set ``MOTO_PORT`` to the server's port (moto's
interpreter calls Lambda at ``http://localhost:$MOTO_PORT``), pass ``endpoint_url`` to
``AwsGaps``/``LocalPipeline``, and call ``enable_state_machine_execution()`` once.

Tests also wrap the world in ``virtual_clock()``: the definition's Wait states then take no real time,
yet executions still meet in the order their waits would end (see ``VirtualClock``; ``held()`` stops
time while a test starts several runs); ``fast_retries()`` skips the Retry intervals.

The modules, one per part: ``synthesis`` (the template), ``template`` (reading it), ``gaps`` (moto's
gaps and injected faults), ``blobs`` and ``seeding`` (what moto does not ship), ``in_process`` (the
handlers run here), ``interpreter`` (moto's Step Functions interpreter: execution on, its waits),
``deploy`` (the template's resources in moto, executions run and read).
"""

from coldstart.emulator.blobs import fetch_layer
from coldstart.emulator.common import ACCOUNT, DEFAULT_BOTTLEROCKET_VERSION, DEFAULT_REGION, VLLM_IMAGE_ENV, EmulatorError
from coldstart.emulator.deploy import ExecutionResult, LocalPipeline
from coldstart.emulator.gaps import ApiCall, AwsGaps, Faults
from coldstart.emulator.in_process import in_process_lambdas, run_handler
from coldstart.emulator.interpreter import VirtualClock, enable_state_machine_execution, fast_retries, virtual_clock
from coldstart.emulator.seeding import (
    seed_bottlerocket,
    seed_ecr_from_oci_layout,
    seed_ecr_image,
    seed_ecr_image_with_config,
    seed_public_parameter,
)
from coldstart.emulator.synthesis import synthesize_pipeline_template
from coldstart.emulator.template import (
    FunctionSpec,
    resolve_intrinsics,
    state_machine_definition,
    state_machine_resource,
    template_functions,
)

__all__ = [
    "ACCOUNT", "DEFAULT_BOTTLEROCKET_VERSION", "DEFAULT_REGION", "VLLM_IMAGE_ENV", "ApiCall", "AwsGaps", "EmulatorError",
    "ExecutionResult", "Faults", "FunctionSpec", "LocalPipeline", "VirtualClock", "enable_state_machine_execution",
    "fast_retries", "fetch_layer", "in_process_lambdas", "resolve_intrinsics", "run_handler", "seed_bottlerocket",
    "seed_ecr_from_oci_layout", "seed_ecr_image", "seed_ecr_image_with_config", "seed_public_parameter",
    "state_machine_definition", "state_machine_resource", "synthesize_pipeline_template", "template_functions", "virtual_clock",
]
