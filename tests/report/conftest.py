"""Fixtures of the report tests (helpers in report_helpers.py)."""

from __future__ import annotations

import pytest
from report_helpers import TINY, tiny_network


@pytest.fixture
def tiny_zoo(monkeypatch):
    """Make the tiny network a built-in name for the duration of a test."""
    from flexspec.workload import zoo

    monkeypatch.setitem(zoo.NETWORKS, TINY, tiny_network)
    return TINY


@pytest.fixture(scope="session")
def tiny_report():
    from flexspec.pipeline import run

    return run(tiny_network(), "u200", progress=False)
