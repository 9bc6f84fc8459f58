"""Shared helpers for the cold-start report tests: the recorded bundles under fixtures/."""

from pathlib import Path

import pytest

from coldstart.report import build_timeline, load_bundle

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def timeline_of():
    def build(name: str):
        return build_timeline(load_bundle(FIXTURES / name))

    return build
