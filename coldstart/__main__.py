"""``python -m coldstart <command>``: the operator CLI (see coldstart/cli.py and docs/operations.md)."""

from coldstart import interrupts

# Before anything imports jsii (its node runtime takes NODE_OPTIONS when it starts): Ctrl-C is one
# line and exit 130, and the runtime is stopped gracefully rather than killed.
interrupts.install()

from coldstart.cli import app  # noqa: E402

app(prog_name="coldstart")
