"""app.py resolves the configuration before jsii starts (a bad key is refused in a fraction of a second), from
the context it reads itself: that must be the context the real aws-cdk-lib App then holds, however the CDK CLI
hands it over (nothing, CDK_CONTEXT_JSON, or the overflow file it uses for a large context)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app import CONTEXT_ENV, CONTEXT_OVERFLOW_ENV, app_context, new_app
from settings.config import PREFIX, SCHEMA, from_app_context

REPO = Path(__file__).resolve().parents[2]
CLI_CONTEXT = {"coldstart:gpuLimit": "7", "coldstart:maxAzs": 3}
OVERFLOW = {"coldstart:gpuLimit": "9", "coldstart:clusterName": "from-overflow"}
# The App's context, printed by a fresh process: jsii's Node reads the environment once, when it starts.
PRINT_HELD = "import json; from app import new_app; print(json.dumps(new_app(outdir='{out}').node.get_all_context()))"


def _config_keys(context: dict[str, Any]) -> dict[str, Any]:
    """What the configuration is resolved from: the prefixed keys and any unprefixed spelling of one. The App keeps
    no key whose value is null (a missing key falls back to cdk.json's default, null too)."""
    return {k: v for k, v in context.items() if (k.startswith(PREFIX) or k in SCHEMA) and v is not None}


def test_without_the_cdk_cli_both_read_cdk_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    monkeypatch.delenv(CONTEXT_OVERFLOW_ENV, raising=False)

    held = new_app(outdir=str(tmp_path / "out")).node.get_all_context()

    assert _config_keys(app_context()) == _config_keys(held) != {}
    assert from_app_context(app_context()) == from_app_context(held)


def test_the_cli_handover_with_an_overflow_file_reaches_both_alike(tmp_path: Path) -> None:
    cdk_json = json.loads((REPO / "cdk.json").read_text())["context"]
    (tmp_path / "overflow.json").write_text(json.dumps(OVERFLOW))
    env = {**os.environ, CONTEXT_ENV: json.dumps({**cdk_json, **CLI_CONTEXT}),  # the CLI passes cdk.json's + -c
           CONTEXT_OVERFLOW_ENV: str(tmp_path / "overflow.json")}

    printed = subprocess.run([sys.executable, "-c", PRINT_HELD.format(out=tmp_path / "out")], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True, timeout=300).stdout
    held = json.loads(printed.strip().splitlines()[-1])
    read = app_context(env)

    assert _config_keys(read) == _config_keys(held)
    config = from_app_context(read)
    assert (config.gpuLimit, config.maxAzs, config.clusterName) == (9, 3, "from-overflow")  # overflow over -c over cdk.json
