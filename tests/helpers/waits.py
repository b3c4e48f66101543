"""Waiting on conditions instead of fixed sleeps: the UI tests run as fast as the machine allows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SETTLE_TIMEOUT = 30.0
"""Seconds `settle` waits for the app's workers before failing (a loaded CI machine is slow, never this slow)."""


LONG_LIVED = frozenset({"_loader"})
"""Workers that live as long as their widget (DirectoryTree's loader): never waited for."""


def _pending(app) -> list:
    return [w for w in app.workers if not w.is_finished and w.name not in LONG_LIVED]


async def settle(pilot, timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until every worker has finished and the messages they posted have been handled."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        while pending := _pending(app):
            assert time.monotonic() < deadline, f"workers still running: {[w.name for w in pending]}"
            await asyncio.sleep(0.01)
        await pilot.pause()  # handle what the workers posted (it may start new workers)
        if not _pending(app):
            return


async def wait_until(pilot, predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Let the app run until `predicate()` is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what or predicate}"
        await pilot.pause(0.02)
