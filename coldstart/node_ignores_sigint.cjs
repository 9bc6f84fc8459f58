// Preloaded into the jsii runtime (node) that CDK/cdk8s synthesis starts under `python -m coldstart`
// (coldstart/interrupts.py puts it in NODE_OPTIONS). A terminal's Ctrl-C reaches the whole process
// group; the Python CLI handles it (one line, exit 130, its clean-up), and jsii's exit hook then stops
// this runtime gracefully, which also removes its jsii-kernel-* temporary folder. Killed by the same
// Ctrl-C instead, the runtime would leave that folder behind and break the pipe Python still writes to.
process.on("SIGINT", () => {});
