"""`python -m lora_tui.train RUN_DIR [--resume]`: the training process (started by lora_tui.core.launcher)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the worker's arguments and train."""
    parser = argparse.ArgumentParser(prog="python -m lora_tui.train",
                                     description="Train the run described by RUN_DIR/run.toml.")
    parser.add_argument("run_dir", help="run directory holding run.toml (written by `lora-tui train`)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    args = parser.parse_args(argv)
    from lora_tui.train.worker import run_worker

    return run_worker(args.run_dir, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
