"""CDK stacks: thin composers of the constructs in ``stacks/constructs`` (and ``stacks/pipeline``)."""
