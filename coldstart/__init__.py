"""vllm-coldstart: configuration, shared names and the operator CLI."""
