"""Training tests share one demo model build per session (in the session cache set by tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """The built demo model directory."""
    from lora_tui.train.demo import ensure_demo_model

    return ensure_demo_model()
