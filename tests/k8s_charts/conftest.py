"""Fixtures for the chart tests (helpers live in chart_helpers.py)."""

from __future__ import annotations

import pytest
from chart_helpers import published_fixture

from k8s_charts.published import PublishedSnapshot
from settings.config import AppConfig, load_default_config


@pytest.fixture(scope="session")
def cfg() -> AppConfig:
    return load_default_config()


@pytest.fixture(scope="session")
def published() -> PublishedSnapshot:
    return published_fixture()
