"""`lora-tui` with no subcommand: parse the TUI's few options, build the app with `make_app` and run it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from lora_tui.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are our one-line UserError."""

    def error(self, message: str) -> NoReturn:
        raise UserError(message)


TUI_OPTIONS = ("--runs-root", "--runs", "--monitor", "--light")
"""Options that open the TUI when they come first on the command line (`lora-tui --runs`)."""


def tui_argv(argv: list[str]) -> list[str] | None:
    """The TUI's own arguments when `argv` opens the TUI (nothing, `--tui ...`, or a TUI option first), else None.

    The dispatcher in `lora_tui.cli` calls this before building the subcommand parser.
    """
    if not argv:
        return []
    if argv[0] == "--tui":
        return argv[1:]
    if argv[0].split("=", 1)[0] in TUI_OPTIONS:
        return argv
    return None


def build_parser() -> argparse.ArgumentParser:
    """The TUI's options."""
    parser = _Parser(prog="lora-tui", description="Open the lora-tui terminal app.")
    parser.add_argument("--runs-root", type=Path, default=None,
                        help="where runs are created and listed (default: $LORA_TUI_RUNS or ./runs)")
    parser.add_argument("--runs", action="store_true", help="start on the runs list (to re-attach to a run)")
    parser.add_argument("--monitor", type=Path, default=None, metavar="RUN_DIR",
                        help="open the monitor of this run directory")
    parser.add_argument("--light", action="store_true", help="start in the light theme")
    return parser


def run_tui(argv: list[str]) -> int:
    """Run the TUI until the person quits; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.runs_root is not None and args.runs_root.exists() and not args.runs_root.is_dir():
        raise UserError(f"--runs-root {args.runs_root}: exists and is not a directory")
    if args.monitor is not None and not args.monitor.is_dir():
        raise UserError(f"--monitor {args.monitor}: no such run directory")
    from lora_tui.core.demo_assets import start_prebuild
    from lora_tui.ui.app import make_app

    start_prebuild()  # the demo tokenizer and model, in the background, while the person reads the first screens

    app = make_app(runs_root=args.runs_root, start="runs" if args.runs or args.monitor else "hardware",
                   open_run=args.monitor)
    if args.light:
        app.theme = "textual-light"
    app.run()
    return int(app.return_code or 0)
