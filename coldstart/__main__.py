"""``python -m coldstart <command>``: the operator CLI (see coldstart/cli.py and docs/operations.md)."""

from coldstart.cli import app

app(prog_name="coldstart")
