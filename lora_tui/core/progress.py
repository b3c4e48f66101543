"""Progress of a long wait (loading a model, merging, saving, generating): what is being done, how far it is and
about how long is left, told to a callback as `Progress` events; and a cancel request, honoured where safe.

A `ProgressTracker` is handed to the slow code, which calls `stage` when it starts something, `advance` as it goes
and `check` where stopping is safe; the CLI prints the events on stderr, the TUI shows them as a bar. A stage of
unknown length (loading a model) is re-told every `heartbeat` seconds, so its elapsed time keeps counting.
The time left is `core.follow.eta_seconds`: the average pace so far, as the training monitor tells it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lora_tui.core.follow import eta_seconds, format_duration
from lora_tui.core.units import fmt_bytes
from lora_tui.i18n import N_, _

UNITS = {"bytes": N_("bytes"), "modules": N_("modules"), "tokens": N_("tokens"), "records": N_("records")}
"""What a stage counts, as its unit is shown (English; `_()` shows it)."""


class Cancelled(Exception):
    """The person asked to stop; raised by `ProgressTracker.check` where stopping leaves nothing half done."""


@dataclass(frozen=True)
class Progress:
    """One report of a long wait."""

    stage: str
    """What is being done (`merging the adapter into the base`, `generating the adapter's answer`), in the
    language it is shown in (the slow code words it with `_()`)."""
    done: int = 0
    """Units done in this stage."""
    total: int | None = None
    """Units in the stage, None when unknown (the bar is then indeterminate)."""
    unit: str = ""
    """What is counted: a key of `UNITS` (modules, tokens, bytes, records)."""
    elapsed: float = 0.0
    """Seconds since the stage started."""
    final: bool = False
    """The last event of the whole wait (finished or cancelled)."""
    cancelled: bool = False
    """The wait ended because the person asked to stop."""
    at_most: bool = False
    """`total` is an upper bound (a generation may end before its token limit), so the time left is too."""

    @property
    def fraction(self) -> float | None:
        """Done share of the stage in [0, 1]; None when its length is unknown."""
        return min(1.0, self.done / self.total) if self.total else None

    @property
    def seconds_left(self) -> float | None:
        """Time left in the stage at the pace so far, None until it can be told."""
        return None if self.final or self.total is None else eta_seconds(self.done, self.total, self.elapsed)

    def describe(self) -> str:
        """`merging the adapter into the base: 12/24 modules, about 3s left` in one line (current language)."""
        if self.final:
            return _("{stage}: cancelled").format(stage=self.stage) if self.cancelled else \
                _("{stage} ({elapsed})").format(stage=self.stage, elapsed=format_duration(self.elapsed))
        if self.total is None:
            return _("{stage}… {elapsed}").format(stage=self.stage, elapsed=format_duration(self.elapsed)) \
                if self.elapsed >= 0.5 else _("{stage}…").format(stage=self.stage)
        if self.unit == "bytes":
            count = _("{done} of {total}").format(done=fmt_bytes(self.done), total=fmt_bytes(self.total))
        elif self.unit:
            count = _("{done}/{total} {unit}").format(done=self.done, total=self.total,
                                                      unit=_(UNITS.get(self.unit, self.unit)))
        else:
            count = f"{self.done}/{self.total}"
        left = self.seconds_left
        if left is None:
            return _("{stage}: {count}").format(stage=self.stage, count=count)
        when = _("{stage}: {count}, at most {left} left") if self.at_most else _("{stage}: {count}, about {left} left")
        return when.format(stage=self.stage, count=count, left=format_duration(left))


Report = Callable[[Progress], None]
"""What receives the events (called from the worker's thread, and from the heartbeat's)."""


class ProgressTracker:
    """Turns `stage`/`advance` calls into `Progress` events for `report`; `cancel` is the stop request."""

    def __init__(self, report: Report | None = None, cancel: threading.Event | None = None, *,
                 min_interval: float = 0.1, heartbeat: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._report = report
        self.cancel = cancel or threading.Event()
        """Set it (from any thread) to ask the work to stop at its next safe point."""
        self._min_interval, self._heartbeat, self._clock = min_interval, heartbeat, clock
        self._lock = threading.Lock()
        self._current = Progress(_("starting"))
        self._created = self._started = self._last_sent = clock()
        self._beat: threading.Thread | None = None
        self._beat_stop = threading.Event()

    @property
    def current(self) -> Progress:
        """The latest state, sent or not."""
        return self._current

    def stage(self, stage: str, total: int | None = None, unit: str = "", *, at_most: bool = False) -> None:
        """Start a stage (told at once); one of unknown length is re-told every `heartbeat` seconds."""
        self._stop_beat()
        with self._lock:
            self._started = self._clock()
            self._current = Progress(stage, 0, total, unit, 0.0, at_most=at_most)
        self._send(force=True)
        if total is None and self._report is not None and self._heartbeat > 0:
            self._beat_stop = threading.Event()
            self._beat = threading.Thread(target=self._beat_loop, args=(self._beat_stop,), daemon=True)
            self._beat.start()

    def advance(self, step: int = 1, *, done: int | None = None) -> None:
        """`step` more units done (or `done` in all); told at most every `min_interval` s, and at the stage's end."""
        with self._lock:
            now = self._current.done + step if done is None else done
            self._current = Progress(self._current.stage, now, self._current.total, self._current.unit,
                                     self._clock() - self._started, at_most=self._current.at_most)
            end = self._current.total is not None and now >= self._current.total
        self._send(force=end)

    def check(self) -> None:
        """Raise `Cancelled` when a stop was asked for (call it only where stopping is safe)."""
        if self.cancel.is_set():
            raise Cancelled(self._current.stage)

    def finish(self, stage: str | None = None, *, cancelled: bool = False) -> Progress:
        """Tell the final event (`stage`, else the last stage's name, and the whole wait's time; or that it was
        cancelled) and return it."""
        self._stop_beat()
        with self._lock:
            c = self._current
            self._current = Progress(stage or c.stage, c.done, c.total, c.unit, self._clock() - self._created,
                                     final=True, cancelled=cancelled, at_most=c.at_most)
        self._send(force=True)
        return self._current

    def _send(self, *, force: bool = False) -> None:
        if self._report is None:
            return
        now = self._clock()
        if not force and now - self._last_sent < self._min_interval:
            return
        self._last_sent = now
        self._report(self._current)

    def _beat_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self._heartbeat):
            with self._lock:
                c = self._current
                self._current = Progress(c.stage, c.done, c.total, c.unit, self._clock() - self._started)
            self._send(force=True)

    def _stop_beat(self) -> None:
        self._beat_stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()
        self._beat = None
