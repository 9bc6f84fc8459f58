"""``python -m coldstart <command>``: the operator CLI (see coldstart/cli.py and docs/operations.md)."""

from coldstart import interrupts
from coldstart.cli import app

interrupts.install()  # Ctrl-C: one line and exit 130, even when it also ended the jsii runtime
app(prog_name="coldstart")
