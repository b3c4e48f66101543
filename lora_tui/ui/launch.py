"""`lora-tui` with no subcommand: parse the TUI's few options, build the app with `make_app` and run it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from lora_tui import i18n
from lora_tui.errors import UserError
from lora_tui.i18n import _


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
    parser = _Parser(prog="lora-tui", description=_("Open the lora-tui terminal app."))
    parser.add_argument("--runs-root", type=Path, default=None,
                        help=_("where runs are created and listed (default: $LORA_TUI_RUNS or ./runs)"))
    parser.add_argument("--runs", action="store_true", help=_("start on the runs list (to re-attach to a run)"))
    parser.add_argument("--monitor", type=Path, default=None, metavar="RUN_DIR",
                        help=_("open the monitor of this run directory"))
    parser.add_argument("--light", action="store_true", help=_("start in the light theme"))
    parser.add_argument("--lang", choices=i18n.LANGUAGES, default=None,
                        help=_("the language of the app (default: $LORA_TUI_LANG, else the language chosen in "
                               "the app last time, else the locale, else en)"))
    return parser


def tui_language(flag: str | None) -> str:
    """The TUI's language: `--lang`, LORA_TUI_LANG, the choice remembered in the settings file, the locale."""
    from lora_tui.ui.settings import remembered_language

    return i18n.choose_language(flag, remembered=remembered_language())


def run_tui(argv: list[str], *, lang: str | None = None) -> int:
    """Run the TUI until the person quits; returns the exit status. `lang` is `--lang` (taken off `argv`)."""
    flag, argv = i18n.lang_option(argv)
    i18n.set_language(tui_language(lang or flag))
    args = build_parser().parse_args(argv)
    if args.runs_root is not None and args.runs_root.exists() and not args.runs_root.is_dir():
        raise UserError(_("--runs-root {path}: exists and is not a directory").format(path=args.runs_root))
    if args.monitor is not None and not args.monitor.is_dir():
        raise UserError(_("--monitor {path}: no such run directory").format(path=args.monitor))
    from lora_tui.core.demo_assets import start_prebuild
    from lora_tui.ui.app import make_app

    start_prebuild()  # the demo tokenizer and model, in the background, while the person reads the first screens

    app = make_app(runs_root=args.runs_root, start="runs" if args.runs or args.monitor else "hardware",
                   open_run=args.monitor)
    if args.light:
        app.theme = "textual-light"
    app.run()
    return int(app.return_code or 0)
