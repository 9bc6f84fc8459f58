"""The README stays true: two set-up commands first, the configuration table matches the code,
and .ci/run calls the README's test command."""

from __future__ import annotations

import re

from coldstart.config_table import render
from settings.config import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_opens_with_exactly_two_setup_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block, "README must open with a bash block"
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert README.index("```bash") < README.index("## ")


def test_readme_configuration_table_matches_the_schema_and_cdk_json() -> None:
    assert render() in README, "regenerate with: python -m coldstart.config_table"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.M)
