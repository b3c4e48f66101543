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

from lora_tui import __version__, i18n
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _

SUBCOMMANDS: tuple[str, ...] = ("hw", "inspect", "recommend", "plan", "train", "sweep", "runs", "adapters")
"""Subcommand modules, in the order `--help` lists them."""


ARGPARSE_MESSAGES = frozenset((
    N_("usage: "), N_("options"), N_("positional arguments"), N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"), N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"), N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"), N_("expected one argument"), N_("expected at least one argument"),
    N_("expected at most one argument"), N_("not allowed with argument %s"), N_("one of the arguments %s is required"),
    N_("ambiguous option: %(option)s could match %(matches)s"), N_("ignored explicit argument %r")))
"""argparse's own messages a person reads (usage errors and the --help headings): shown through the catalogue."""


def _argparse_message(message: str) -> str:
    return _(message) if message in ARGPARSE_MESSAGES else message


setattr(argparse, "_", _argparse_message)  # noqa: B010 - argparse looks its messages up through this module global


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is our one-line error with exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def add_lang_flag(parser: argparse.ArgumentParser) -> None:
    """`--lang ja|en` on a parser and on every subcommand under it (read before parsing: `i18n.lang_option`)."""
    parser.add_argument("--lang", choices=i18n.LANGUAGES, default=argparse.SUPPRESS,
                        help=_("the language of the output and the help (default: $LORA_TUI_LANG, else the "
                               "locale, else en); JSON output is always English"))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                add_lang_flag(child)


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser (every subcommand registered)."""
    parser = _Parser(
        prog="lora-tui",
        description=_("From a GPU and a dataset to a trained LoRA adapter. Without a subcommand, opens the TUI."),
    )
    parser.add_argument("--version", action="version", version=f"lora-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"lora_tui.cli.{name}").register(sub)
    add_lang_flag(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run lora-tui; returns the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    previous = i18n.language()
    try:
        lang, without_lang = i18n.lang_option(args_list)
        from lora_tui.ui.launch import tui_argv  # light: argparse only, textual is imported by run_tui

        tui_args = tui_argv(without_lang)
        if tui_args is not None:
            from lora_tui.ui.launch import run_tui

            return run_tui(tui_args, lang=lang)
        i18n.set_language(i18n.choose_language(lang))
        parser = build_parser()
        args = parser.parse_args(args_list)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 2
        if getattr(args, "json", False):
            i18n.set_language("en")  # JSON output is the same whatever the language, so scripts do not break
        return int(args.func(args) or 0)
    except UserError as exc:
        print(_("lora-tui: error: {message}").format(message=exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(_("lora-tui: interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        i18n.set_language(previous)
