"""One writer per run directory: an exclusive `flock` on RUN/.lora_tui.lock, and who a run's process is.

The launcher takes the lock (`acquire`) before it writes anything into the directory and keeps it while it
writes run.toml, launch.json and status.json. It hands the lock to the training process by letting the child
inherit the locked file descriptor (its number in the LORA_TUI_LOCK_FD environment variable; `adopt` takes it
over): a flock belongs to the open file description, which parent and child then share, so the lock is held
without a gap from the launcher's first write until the training process exits, when the OS releases it (kill -9
included). A second launcher (`train`, `--overwrite`, `--resume`) finds it held and is refused.

Readers probe it (`probe`): a run whose lock file exists and is free is not running, whatever its pid says. A
directory without a lock file (written by an older version, or by hand) falls back to its pid and start time.

A pid is checked with its start time (psutil's create_time, recorded with the pid in status.json) before a
signal is sent (`same_process`), so a pid the OS has since given to another process is never signalled.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs fall back to their pid
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lora_tui.lock"
"""The lock file inside a run directory (empty; only its flock matters)."""
LOCK_FD_ENV = "LORA_TUI_LOCK_FD"
"""Environment variable telling the training process which inherited descriptor holds the lock."""
ACQUIRE_WAIT_S = 0.5
"""How long `acquire` retries a held lock: readers hold a shared lock for microseconds while probing."""
START_TIME_TOLERANCE_S = 1.0
"""Largest difference between a recorded and a measured process start time that is still the same process
(the boot time the kernel reports can move by a second when the clock is adjusted)."""

_HELD: dict[str, RunLock] = {}
"""Locks this process holds, by the run directory's real path."""


@dataclass
class RunLock:
    """A held run-directory lock."""

    run_dir: Path
    """The run directory it protects."""
    fd: int
    """The locked descriptor of RUN/.lora_tui.lock (-1 where flock does not exist)."""

    def release(self) -> None:
        """Close this process's descriptor. A child that inherited it keeps the lock until it exits."""
        _HELD.pop(_key(self.run_dir), None)
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def _key(run_dir: str | Path) -> str:
    return os.path.realpath(run_dir)


def held(run_dir: str | Path) -> RunLock | None:
    """The lock this process holds on `run_dir`, if it holds one."""
    return _HELD.get(_key(run_dir))


def acquire(run_dir: str | Path, *, wait_s: float = ACQUIRE_WAIT_S) -> RunLock | None:
    """Take the run directory's lock (creating the lock file); None when another process holds it.

    The directory must exist. OSError when the lock file cannot be created (a full disk, no permission).
    """
    directory = Path(run_dir)
    mine = held(directory)
    if mine is not None:
        return mine
    if fcntl is None:  # pragma: no cover
        lock = RunLock(directory, -1)
        _HELD[_key(directory)] = lock
        return lock
    path = directory / LOCK_FILE
    deadline = time.monotonic() + wait_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
            continue
        except OSError:
            os.close(fd)
            raise
        if _same_file(fd, path):
            lock = RunLock(directory, fd)
            _HELD[_key(directory)] = lock
            return lock
        os.close(fd)  # the file was removed or replaced between open and flock (a failed launch cleaning up)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open descriptor is still the file at `path`."""
    try:
        opened, current = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)


def adopt(run_dir: str | Path) -> RunLock | None:
    """The training process's lock: the descriptor its launcher handed over (LORA_TUI_LOCK_FD), the lock this
    process already holds (a launcher that trains in-process), or a fresh `acquire`. None when another process
    holds it."""
    directory = Path(run_dir)
    text = os.environ.pop(LOCK_FD_ENV, None)
    if text and text.isdigit() and fcntl is not None:
        fd = int(text)
        if _same_file(fd, directory / LOCK_FILE):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: the same open file description
                os.set_inheritable(fd, False)  # helper processes must not keep the run "running"
            except OSError:
                pass
            else:
                lock = RunLock(directory, fd)
                _HELD[_key(directory)] = lock
                return lock
    return held(directory) or acquire(directory)


def probe(run_dir: str | Path) -> bool | None:
    """True when some process holds the run's lock, False when its lock file is free, None when there is no
    lock file (or it cannot be read): then only the pid can tell."""
    if held(run_dir) is not None:
        return True
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops the shared lock
    return False


# ---- process identity -----------------------------------------------------------------------------------


def process_start_time(pid: int) -> float | None:
    """When the process `pid` started (psutil's create_time), or None when there is no such process."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError, OverflowError):
        return None


def same_process(pid: int, started: float | None, alive: bool) -> bool:
    """Whether `pid` is still the process that was recorded with start time `started`.

    `alive` is whether the pid exists now (not a zombie). Without a recorded start time (an older run) the pid
    alone decides."""
    if not alive:
        return False
    if started is None:
        return True
    now = process_start_time(pid)
    return now is not None and abs(now - started) <= START_TIME_TOLERANCE_S
