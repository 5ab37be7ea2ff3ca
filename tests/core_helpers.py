"""Helpers shared by the AVB-core tests (networks, objectives, training, model I/O)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def single_thread():
    """Run a test's torch ops on one thread, then restore the setting.

    The core tests use tiny networks, where intra-op threads only add synchronisation: on a busy 2-core
    machine two threads made them about four times slower, and one thread gives the same result every run.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
