"""The `lora-tui` entry point: no subcommand opens the TUI; each subcommand is its headless twin.

Every subcommand lives in its own module under `lora_tui.cli` and exposes
`register(subparsers: argparse._SubParsersAction) -> None`, which adds its parser and sets
`func=run` where `run(args: argparse.Namespace) -> int`. Modules here import nothing heavy at module
level: the parser is built on every start, the TUI's included.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from lora_tui import __version__
from lora_tui.errors import UserError

SUBCOMMANDS: tuple[str, ...] = ("hw", "inspect", "recommend", "plan", "train", "runs", "adapters")
"""Subcommand modules, in the order `--help` lists them."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is our one-line error with exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser (every subcommand registered)."""
    parser = _Parser(
        prog="lora-tui",
        description="From a GPU and a dataset to a trained LoRA adapter. Without a subcommand, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"lora-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"lora_tui.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run lora-tui; returns the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        from lora_tui.ui.launch import tui_argv  # light: argparse only, textual is imported by run_tui

        tui_args = tui_argv(args_list)
        if tui_args is not None:
            from lora_tui.ui.launch import run_tui

            return run_tui(tui_args)
        parser = build_parser()
        args = parser.parse_args(args_list)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"lora-tui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lora-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
