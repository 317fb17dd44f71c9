"""Shared fixtures of the spectral tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """One torch thread: on a shared 2-core machine two threads are many times slower."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
