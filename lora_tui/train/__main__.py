"""`python -m lora_tui.train RUN_DIR [--resume]`: the training process (started by lora_tui.core.launcher)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse the worker's arguments and train."""
    parser = argparse.ArgumentParser(prog="python -m lora_tui.train",
                                     description="Train the run described by RUN_DIR/run.toml.")
    parser.add_argument("run_dir", help="run directory holding run.toml (written by `lora-tui train`)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    args = parser.parse_args(argv)
    _stop_file_on_signal(args.run_dir)
    from lora_tui.train.worker import run_worker  # heavy: torch, transformers, peft, trl

    return run_worker(args.run_dir, resume=args.resume)


def _stop_file_on_signal(run_dir: str) -> None:
    """Until the worker installs its own handlers: SIGINT/SIGTERM write the STOP file, which the run honours
    at its first step end (save and stop) instead of dying while it imports. The launcher starts a single
    worker with both signals blocked, so one sent during start-up waits for this handler."""
    from lora_tui.core.runs import STOP_FILE

    def handler(signum: int, _frame: object) -> None:
        try:
            (Path(run_dir) / STOP_FILE).write_text(f"signal {signum} during start-up\n", encoding="utf-8")
        except OSError:  # no run directory to write to: nothing to save either
            sys.exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    sys.exit(main())
