"""Helpers shared by the whole suite: fakes, data files, waits. Imported as `tests.helpers.NAME`."""

from __future__ import annotations

from pathlib import Path

FAKE_TRAINER = Path(__file__).resolve().parent / "fake_trainer.py"
"""The fake training process: writes a run's files like the real one, without torch."""
