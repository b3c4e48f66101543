"""core.progress: the events a long wait tells (stage, count, time left), throttled, and the cancel request."""

from __future__ import annotations

import threading
import time

import pytest

from lora_tui.core.progress import Cancelled, Progress, ProgressTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stages_counts_and_time_left() -> None:
    clock, events = Clock(), []
    tracker = ProgressTracker(events.append, min_interval=1.0, heartbeat=0, clock=clock)
    tracker.stage("merging", 10, "modules")
    for _ in range(10):
        clock.now += 0.3
        tracker.advance()
    # the start, then at most one event a second, and the stage's end always
    assert [e.done for e in events] == [0, 4, 8, 10]
    assert events[1].describe() == "merging: 4/10 modules, about 2s left"  # 1.2 s for 4, 6 to go
    assert events[1].fraction == 0.4 and events[-1].seconds_left == 0
    final = tracker.finish()
    assert final.final and final.elapsed == pytest.approx(3.0) and final.describe() == "merging (3s)"
    assert final.seconds_left is None


def test_an_upper_bound_says_at_most_and_bytes_read_as_sizes() -> None:
    assert Progress("generating", 10, 100, "tokens", 1.0, at_most=True).describe() == \
        "generating: 10/100 tokens, at most 9s left"
    assert Progress("saving", 512 * 1024, 1024 * 1024, "bytes", 1.0).describe().startswith("saving: 512")
    assert Progress("loading the base", elapsed=4.2).describe() == "loading the base… 4s"
    assert Progress("x", final=True, cancelled=True).describe() == "x: cancelled"


def test_a_stage_of_unknown_length_keeps_telling_its_elapsed_time() -> None:
    events: list[Progress] = []
    tracker = ProgressTracker(events.append, heartbeat=0.05)
    tracker.stage("loading the base model")
    time.sleep(0.4)
    tracker.stage("next", 1)
    count = len(events)
    time.sleep(0.2)
    assert len(events) == count  # the heartbeat stopped with its stage
    loading = [e for e in events if e.stage == "loading the base model"]
    assert len(loading) >= 3 and loading[-1].elapsed > loading[1].elapsed > 0


def test_check_raises_only_after_a_cancel_request() -> None:
    cancel = threading.Event()
    tracker = ProgressTracker(None, cancel)
    tracker.stage("merging", 2)
    tracker.check()
    cancel.set()
    with pytest.raises(Cancelled, match="merging"):
        tracker.check()
