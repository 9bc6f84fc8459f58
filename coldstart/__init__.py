"""vllm-coldstart: configuration, shared names and the operator CLI."""

import os as _os

# The CLI and the chart synth start jsii (cdk8s, aws-cdk-lib); silence its Node-20 end-of-life banner.
_os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
