"""`lora-tui adapters`: list, show, try, compare and merge trained adapters.

list/show read files only (lora_tui.core.adapters); try/compare/merge load the model stack lazily, inside `run`.
try/compare/merge tell their progress on stderr (one line rewritten in place on a terminal, a line per stage
otherwise); Ctrl-C stops at the next safe point (the next token; a merge before its final rename), a second
Ctrl-C at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lora_tui.cells import table as cell_table
from lora_tui.core.adapter_report import fmt_number, format_details
from lora_tui.core.progress import Progress
from lora_tui.core.units import fmt_decimal_bytes
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, pgettext


def register(subparsers: Any) -> None:
    """Add `adapters` and its subcommands."""
    parser = subparsers.add_parser("adapters", help=_("list, inspect, try, compare and merge trained adapters"),
                                   description=_("Work with trained LoRA adapters."))
    sub = parser.add_subparsers(dest="adapters_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    p = sub.add_parser("list", help=_("every adapter under ROOT with base, r, alpha, targets, size, loss, status"))
    p.add_argument("root", nargs="?",
                   help=_("directory to search (default: the output root, $LORA_TUI_RUNS or ./runs)"))
    p.add_argument("--json", action="store_true", help=_("print JSON instead of a table"))
    p.set_defaults(func=run_list)

    p = sub.add_parser("show", help=_("an adapter's configuration explained, its files and its training info"))
    p.add_argument("path", help=_("adapter (or run) directory"))
    p.add_argument("--json", action="store_true", help=_("print JSON"))
    p.set_defaults(func=run_show)

    p = sub.add_parser("try", help=_("base model and adapter answers side by side"))
    p.add_argument("path", help=_("adapter directory"))
    _add_generation_flags(p)
    p.set_defaults(func=run_try)

    p = sub.add_parser("compare", help=_("several adapters of one base, answers side by side (base loaded once)"))
    p.add_argument("paths", nargs="+", metavar="PATH", help=_("adapter directories (same base model)"))
    _add_generation_flags(p)
    p.set_defaults(func=run_compare)

    p = sub.add_parser("merge", help=_("merge an adapter into its base and save a standalone model"))
    p.add_argument("path", help=_("adapter directory"))
    p.add_argument("--output", "-o", required=True, help=_("directory for the merged model (must be new or empty)"))
    p.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                   help=_("dtype of the merged weights (default: the base model's own)"))
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help=_("where to merge; auto uses the GPU only when the merge fits in its free memory"))
    p.add_argument("--base", help=_("base model directory or hub id (default: the adapter's base_model_name_or_path)"))
    p.add_argument("--overwrite", action="store_true", help=_("replace a non-empty --output"))
    p.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    p.set_defaults(func=run_merge)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_generation_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", action="append", default=[], help=_("a prompt (repeatable)"))
    p.add_argument("--prompts", help=_("a file of prompts, one per line (# starts a comment)"))
    p.add_argument("--system", help=_("system message put before each prompt"))
    p.add_argument("--max-new-tokens", type=int, default=128, help=_("most tokens per answer (default 128)"))
    p.add_argument("--temperature", type=float, default=0.0, help=_("0 = greedy and deterministic (default)"))
    p.add_argument("--base", help=_("base model directory or hub id (default: the adapter's base_model_name_or_path)"))
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help=_("where to run"))
    p.add_argument("--json", action="store_true", help=_("print the answers as JSON"))


# ---- list / show ----------------------------------------------------------------------------------------


def date_text(ts: float | None) -> str:
    """A time stamp as the CLI shows it, local time to the minute (`-` for none)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def run_list(args: argparse.Namespace) -> int:
    """Print every adapter under ROOT."""
    from lora_tui.core.adapters import find_adapters
    from lora_tui.core.paths import output_root

    root = Path(args.root) if args.root else output_root()
    if args.root and not root.is_dir():
        raise UserError(_("{path}: no such directory").format(path=root))
    found = find_adapters(root)
    if args.json:
        print(json.dumps({"root": str(root), "adapters": [a.to_dict() for a in found]}, indent=2))
        return 0
    if not found:
        print(_("No adapters under {root}. Train one with `lora-tui train`.").format(root=root))
        return 0
    header = (_("NAME"), _("STATE"), _("BASE"), "R", "ALPHA", _("TARGETS"), _("SIZE"), _("DATE"), _("LOSS"),
              _("CKPTS"))
    rows = [header]
    for a in found:
        base = Path(a.base_model).name if a.base_model and Path(a.base_model).is_absolute() else a.base_model
        targets = ",".join(a.target_modules) if len(a.target_modules) <= 3 else _("{count} modules").format(
            count=len(a.target_modules))
        rows.append((a.name, pgettext("run state", a.state), base or "-", fmt_number(a.r), fmt_number(a.lora_alpha),
                     targets or "-",
                     fmt_decimal_bytes(a.adapter_bytes) if a.adapter_bytes else "-", date_text(a.modified),
                     fmt_number(a.final_loss, "{:.4f}"), str(a.checkpoints)))
    for i, line in enumerate(cell_table(rows)):
        print(line)
        if i > 0:
            for problem in found[i - 1].problems:
                print(f"    ! {problem}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Explain one adapter."""
    from lora_tui.core.adapters import describe_adapter

    details = describe_adapter(args.path)
    if args.json:
        print(json.dumps(details.to_dict(), indent=2, default=str))
        return 0
    print("\n".join(format_details(details)))
    return 0


# ---- progress and Ctrl-C --------------------------------------------------------------------------------


class ProgressLine:
    """`core.progress` events on stderr: one line rewritten in place on a terminal, else a line per stage."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.paused = False
        """While True (a live answer table owns the terminal) nothing is written."""
        self._stage: str | None = None
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Wipe the line in place (before something else draws on the terminal)."""
        with self._lock:
            if self.tty and self._stage is not None:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def __call__(self, event: Progress) -> None:
        with self._lock:
            if self.paused:
                return
            if self.tty:
                self.stream.write("\r\033[K" + event.describe() + ("\n" if event.final else ""))
            elif event.final or event.stage != self._stage:
                self.stream.write(event.describe() + "\n")
            self._stage = event.stage
            self.stream.flush()


@contextlib.contextmanager
def cancel_on_interrupt(cancel: threading.Event, what: str) -> Iterator[None]:
    """Inside: the first Ctrl-C sets `cancel` (the work stops at its next safe point), a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\n" + _("lora-tui: stopping {what} at the next safe point (Ctrl-C again to stop at once)").format(
            what=what), file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---- try / compare --------------------------------------------------------------------------------------


def _prompts(args: argparse.Namespace) -> list[str]:
    from lora_tui.core.textfiles import read_regular_text

    prompts = list(args.prompt)
    if args.prompts:
        path = Path(args.prompts)
        text = read_regular_text(path, f"--prompts {path}", N_("prompts file"))  # a FIFO or device: refused
        prompts += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not prompts:
        raise UserError(_("give at least one --prompt TEXT or --prompts FILE"))
    return prompts


def run_try(args: argparse.Namespace) -> int:
    """Base and adapter answers side by side."""
    return _answer_table(args, [args.path])


def run_compare(args: argparse.Namespace) -> int:
    """Several adapters on one base, answers side by side."""
    if len(args.paths) < 2:
        raise UserError(_("compare needs at least two adapter directories (use `adapters try` for one)"))
    seen: dict[Path, str] = {}
    for path in args.paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise UserError(_("compare: {path} is the same adapter as {other}; name each adapter once").format(
                path=path, other=seen[resolved]))
        seen[resolved] = path
    return _answer_table(args, args.paths)


def _answer_table(args: argparse.Namespace, paths: list[str]) -> int:
    prompts = _prompts(args)
    from lora_tui.core.progress import ProgressTracker
    from lora_tui.inference.session import AdapterSession, GenerationSettings

    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                  system=args.system)
    line = ProgressLine()
    tracker = ProgressTracker(line)
    with cancel_on_interrupt(tracker.cancel, _("generating")):
        session = AdapterSession.for_adapters(paths, base=args.base, device=args.device, tracker=tracker)
        columns: list[tuple[str, str | None]] = [(_("base"), None)] + [(name, name) for name in session.adapters]
        results = []
        live = sys.stdout.isatty() and not args.json
        for prompt in prompts:
            if tracker.cancel.is_set():
                break
            answers = (_stream_row(session, prompt, columns, settings, tracker, line) if live
                       else _answers(session, prompt, columns, settings, tracker))
            results.append({"prompt": prompt, "answers": answers})
            if not live and not args.json:
                _print_plain(prompt, answers)
    tracker.finish(cancelled=tracker.cancel.is_set())
    if args.json:
        print(json.dumps({"base": str(session.base_dir), "adapters": {k: str(v) for k, v in session.adapters.items()},
                          "settings": vars(settings), "results": results, "cancelled": tracker.cancel.is_set()},
                         indent=2, ensure_ascii=False))
    return 130 if tracker.cancel.is_set() else 0


def _answers(session: Any, prompt: str, columns: list[tuple[str, str | None]], settings: Any,
             tracker: Any) -> dict[str, str]:
    """Each column's answer in turn (those after a cancel left out)."""
    answers = {}
    for label, name in columns:
        if tracker.cancel.is_set():
            break
        answers[label] = session.answer(prompt, name, settings, tracker=tracker)
    return answers


def _print_plain(prompt: str, answers: dict[str, str]) -> None:
    print(f"=== {prompt}")
    for label, text in answers.items():
        print(f"--- {label}")
        print(text.strip() or _("(empty answer)"))
    print()


def _stream_row(session: Any, prompt: str, columns: list[tuple[str, str | None]], settings: Any, tracker: Any,
                line: ProgressLine) -> dict[str, str]:
    """Generate each column in turn, redrawing a side-by-side table as tokens arrive (terminal only), with the
    progress as its caption (the stderr line pauses while the table owns the terminal)."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    texts = {label: "" for label, _name in columns}

    def render() -> Table:
        table = Table(title=prompt, expand=True, show_lines=False, caption=tracker.current.describe())
        for label in texts:
            table.add_column(label, ratio=1, overflow="fold")
        table.add_row(*texts.values())
        return table

    line.clear()
    line.paused = True
    try:
        with Live(render(), console=Console(), refresh_per_second=12) as live:
            for label, name in columns:
                if tracker.cancel.is_set():
                    break

                def on_text(piece: str, label: str = label) -> None:
                    texts[label] += piece
                    live.update(render())

                texts[label] = session.answer(prompt, name, settings, on_text=on_text, tracker=tracker)
                live.update(render())
    finally:
        line.paused = False
    return texts


# ---- merge ----------------------------------------------------------------------------------------------


def run_merge(args: argparse.Namespace) -> int:
    """Merge and save a standalone model."""
    from lora_tui.core.adapters import merge_note
    from lora_tui.inference.merge import merge_adapter

    note = merge_note(args.path)  # refuses an adapter whose run still trains
    if note:
        print(_("lora-tui: note: {note}").format(note=note), file=sys.stderr)

    from lora_tui.core.progress import Cancelled

    cancel = threading.Event()
    try:
        with cancel_on_interrupt(cancel, _("the merge")):
            result = merge_adapter(args.path, args.output, base=args.base, dtype=args.dtype, device=args.device,
                                   overwrite=args.overwrite, progress=ProgressLine(), cancel=cancel)
    except Cancelled:
        print(_("lora-tui: merge cancelled: {path} was not written (nothing was replaced)").format(path=args.output),
              file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(_("merged adapter {path} with base {base} ({dtype}, {device}) in {seconds} s").format(
        path=args.path, base=result.base, dtype=result.plan.dtype, device=result.plan.device,
        seconds=f"{result.seconds:.1f}"))
    print(_("wrote {path}: {files}").format(path=result.output, files=", ".join(
        f"{n} ({fmt_decimal_bytes(s)})" for n, s in result.files)))
    print(_("load it with {call}").format(call=f"AutoModelForCausalLM.from_pretrained({str(result.output)!r})"))
    return 0
