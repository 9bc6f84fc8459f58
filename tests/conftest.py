"""Shared fixtures. The whole CDK app is synthesized once per test session, shared by the xdist workers (it costs seconds)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest

from tests.built_once import built_once_per_session

# jsii prints a large Node end-of-life banner on every start; the value is the Node major to silence.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# No test may reach AWS: fake credentials and a fixed region for boto3 and moto.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-west-2",
    "AWS_REGION": "us-west-2",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)
# moto's EC2 otherwise registers ~1300 stock AMIs (with volumes) per region in every mock, and serializes them in
# every DescribeImages: most of a moto test's time. Tests seed the images they use (the emulator: Bottlerocket).
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"


class _PathsAddedOnce(list[str]):
    """boto3.Session() appends its data folder to its loader's search paths each time it is made."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    """botocore parses its service models (large JSON files) once per Session, and moto plus the code under test make
    a new Session per mock and per client: one loader per search path for the test process instead. The models are
    read-only data (botocore's own per-Session cache already hands every caller the same objects)."""
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _PathsAddedOnce(loader.search_paths)  # botocore/loaders.py Loader.__init__ keeps them here
    return loader


botocore.session.create_loader = _shared_loader  # what Session._register_data_loader calls


def _validate_each_definition_once() -> None:
    """moto parses a definition (ANTLR in pure Python, ~0.4 s for the pipeline's) to validate it at every
    CreateStateMachine (moto/stepfunctions/parser/models.py StepFunctionsParserBackend._validate_definition), and
    each e2e world creates the same one. A definition that parsed once parses again: keep the verdict. A failing one
    raises every time (functools.cache keeps no exception). Executions still parse their own copy."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    StepFunctionsParserBackend._validate_definition = staticmethod(functools.cache(StepFunctionsParserBackend._validate_definition))


_validate_each_definition_once()

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (self-contained, tens of seconds on their own) go first: each xdist worker starts on one,
    so they overlap the rest of the suite instead of running alone at its end. (The order is otherwise kept.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After a run that included the real-component layer (tests/real): the versions it ran against.
    Here, not in tests/real/conftest.py: with xdist only this conftest is loaded by the controller."""
    ran = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, []) if "tests/real/" in r.nodeid]
    if not ran:
        return
    terminalreporter.section("real components used")
    for command in ([str(REPO_ROOT / ".cache" / "containerd" / "usr" / "bin" / "containerd"), "--version"], ["docker-registry", "--version"], ["skopeo", "--version"]):
        try:
            line = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except OSError as exc:
            line = f"{command[0]}: {exc}"
        terminalreporter.write_line(line)


class SynthesizedApp:
    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        manifest = json.loads((outdir / "manifest.json").read_text())
        self.stack_names = sorted(
            name for name, art in manifest["artifacts"].items() if art["type"] == "aws:cloudformation:stack"
        )

    def template(self, stack_name: str) -> dict:
        return json.loads((self.outdir / f"{stack_name}.template.json").read_text())

    def template_paths(self) -> list[Path]:
        return [self.outdir / f"{name}.template.json" for name in self.stack_names]


@pytest.fixture(scope="session")
def synthesized_app(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The real app (app.py's build_app with cdk.json's defaults and cdk-nag on), synthesized once per session."""

    def synth(outdir: Path) -> None:
        from app import build_app, new_app
        from settings.config import load_default_config

        app = new_app(outdir=str(outdir))
        build_app(app, load_default_config())
        app.synth()  # raises if any cdk-nag finding is unacknowledged

    return SynthesizedApp(built_once_per_session(tmp_path_factory, "cdk.out", synth))
