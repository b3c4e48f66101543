"""`lora-tui inspect FILE`: check a dataset before training: format, schema, exact count, size tier, problems,
and with the model's tokenizer the token lengths and a preview of what is trained.

Exit status 0 when every record is valid, 2 when the data has problems (listed as `file:line: message` after
the summary) or cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace
from typing import Any

from lora_tui.cells import pad, width
from lora_tui.core.units import fmt_bytes
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, ngettext

LABEL_CELLS = 12
"""The least width of the report's label column, in terminal cells."""

LABELS = (N_("format"), N_("schema"), N_("shape"), N_("examples"), N_("size tier"), N_("size"), N_("fields"),
          N_("tokens"), N_("template"), N_("too long"), N_("trained"), N_("note"))
"""The report's labels (English; `_()` shows them)."""


def _row(label: str, value: str) -> str:
    """`  label       value`: the label (translated) padded to the label column: LABEL_CELLS cells, or the widest
    label in the current language and two spaces."""
    cells = max(LABEL_CELLS, max(width(_(name)) for name in LABELS) + 2)
    return f"  {pad(_(label), cells)}{value}"

TRAINED_OPEN = "⟦"
"""Printed where a trained span (its tokens carry the loss) starts in `--show`."""
TRAINED_CLOSE = "⟧"
"""Printed where a trained span ends."""
CUT_MARK = "✂"
"""Printed where max_seq_length cuts an example."""


def register(subparsers: Any) -> None:
    """Add the `inspect` subcommand."""
    from lora_tui.core.dataset.mapping import COLUMNS_EXAMPLE

    parser = subparsers.add_parser(
        "inspect",
        help=_("validate a dataset and show its schema, size tier, token lengths and what is trained"),
        description=_(
            "Stream through a data file (JSONL, JSON, CSV/TSV, Parquet), a directory of shards, a glob, or a "
            "datasets save_to_disk directory, validate every record and report what was found. With --model "
            "(or --tokenizer), examples are rendered with the model's chat template and tokenized as training "
            "will. Exit status 2 on problems."
        ),
    )
    parser.add_argument("file", metavar="FILE",
                        help=_("data file, directory of shards, glob or save_to_disk directory"))
    parser.add_argument("--json", action="store_true", help=_("print the report as JSON"))
    parser.add_argument("--model", metavar="M", help=_("measure with this model's tokenizer and chat template when "
                                                       "it is on this machine (demo once built, a cached hub "
                                                       "model, a local directory)"))
    parser.add_argument("--tokenizer", metavar="DIR",
                        help=_("directory with tokenizer.json (or a hub id already cached), instead of --model"))
    parser.add_argument("--columns", metavar="MAP",
                        help=_("map fields for data in no known schema: {example}").format(example=_(COLUMNS_EXAMPLE)))
    parser.add_argument("--max-seq-length", type=int, metavar="N", default=None,
                        help=_("sequence length to compare token counts with (default 1024)"))
    parser.add_argument("--show", type=int, metavar="N", default=0,
                        help=_("print N examples as training sees them, trained spans in {open}…{close}").format(
                            open=TRAINED_OPEN, close=TRAINED_CLOSE))
    parser.add_argument("--max-errors", type=int, metavar="N", default=50,
                        help=_("list at most N problems (default 50)"))
    parser.add_argument("--fetch-tokenizer", action="store_true",
                        help=_("when --model's tokenizer is not on this machine, fetch its tokenizer files (a few "
                               "MB, not the weights) from the hub to measure with"))
    parser.set_defaults(func=run)


_HOW_TO_MEASURE = N_(": pass --model (a local directory, a cached hub model, or demo), --tokenizer DIR, or "
                      "--fetch-tokenizer to fetch a hub model's tokenizer files")


def _tokenizer(args: argparse.Namespace) -> Any:
    """The tokenizer to measure with: --tokenizer, else --model's when it is local, else None."""
    if args.tokenizer is not None:
        return args.tokenizer
    if args.model is None:
        return None
    from lora_tui.core.dataset.tokens import get_tokenizer, local_tokenizer

    return get_tokenizer(args.model) if args.fetch_tokenizer else local_tokenizer(args.model)


def run(args: argparse.Namespace) -> int:
    """Inspect the data and print the report; 2 when it has problems."""
    from lora_tui.core.dataset.report import inspect_dataset

    if args.show < 0:
        raise UserError(_("--show must be >= 0, got {value}").format(value=args.show))
    tokenizer = _tokenizer(args)
    report = inspect_dataset(args.file, tokenizer=tokenizer, max_seq_length=args.max_seq_length,
                             max_issues=args.max_errors, columns=args.columns, progress=_progress_line())
    previews: list[Any] = []
    template = ""
    if args.show and tokenizer is not None and report.examples:
        from lora_tui.core.dataset.preview import preview

        previews, template = preview(args.file, tokenizer, args.show, columns=args.columns,
                                     max_seq_length=args.max_seq_length or 1024)
    if args.json:
        data = report.to_dict()
        if args.show:
            data["preview"] = [_preview_dict(p) for p in previews]
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(render_report(report))
        if args.show and tokenizer is None:
            print(_("\nNo preview: {model}'s tokenizer is not on this machine").format(model=args.model)
                  if args.model else _("\nNo preview: pass --model M (its tokenizer on this machine) or "
                                       "--tokenizer DIR"))
        elif args.show:
            print(render_previews(previews, template))
    if report.ok:
        return 0
    print(ngettext("lora-tui: error: {path} has {count} problem; fix them and inspect again",
                   "lora-tui: error: {path} has {count} problems; fix them and inspect again",
                   report.issue_count).format(path=report.path, count=report.issue_count), file=sys.stderr)
    return 2


def token_lines(stats: Any) -> list[str]:
    """The token statistics as report lines (also `train --dry-run`'s)."""
    lines = [
        _row(N_("tokens"), _("median {median}, p95 {p95}, max {max}, mean {mean} ({tokenizer})").format(
            median=f"{stats.median:,}", p95=f"{stats.p95:,}", max=f"{stats.max:,}", mean=f"{stats.mean:.1f}",
            tokenizer=stats.tokenizer)),
        _row(N_("too long"), _("{over} of {count} longer than max_seq_length {length}").format(
            over=f"{stats.over_max:,}", count=f"{stats.count:,}", length=f"{stats.max_seq_length:,}")
            + (_(" (first: {first})").format(first=stats.first_over) if stats.first_over else "")),
        _row(N_("trained"), _("{share} of the tokens carry the loss").format(share=f"{stats.trained_token_share:.1%}")),
    ]
    if stats.template:
        lines.insert(1, _row(N_("template"), stats.template))
    return lines


def data_lines(data: dict[str, Any] | None) -> list[str]:
    """`train --dry-run`'s lines about the data (a report's `to_dict()`): schema, examples, token statistics."""
    if not data:
        return []
    schema = f"{data['schema']}" if data.get("schema") else _("none recognised")  # a Phrase reads translated
    if data.get("columns"):
        schema += f" ({data['columns']})"
    lines = [_("Data: {path}: {examples} examples, {schema}").format(path=data["path"],
                                                                     examples=f"{data['examples']:,}", schema=schema)]
    stats = data.get("token_stats")
    if stats:
        lines += token_lines(SimpleNamespace(**stats))
    else:
        lines.append(_row(N_("tokens"), _("not measured: the model's tokenizer is not on this machine")))
    return lines


def render_report(report: Any) -> str:
    """The human-readable report: a summary block, then one line per problem."""
    from lora_tui.core.dataset.report import NO_TOKENIZER_NOTE, SHAPES
    from lora_tui.core.tables import describe_size_tier

    shape = f"{report.shape} ({_(SHAPES[report.shape])})" if report.shape else _("unknown")
    schema = f"{report.schema}" if report.schema else _("none recognised")  # a Phrase reads translated
    if report.columns:
        schema += f" ({report.columns})"
    tier = _("{tier}: {description}").format(tier=report.size_tier, description=describe_size_tier(
        report.size_tier)) if report.size_tier else _("none (no examples)")
    lines = [
        f"{report.path}",
        _row(N_("format"), report.file_format),
        _row(N_("schema"), schema),
        _row(N_("shape"), shape),
        _row(N_("examples"), f"{report.examples:,}"),
        _row(N_("size tier"), tier),
        _row(N_("size"), fmt_bytes(report.bytes)),
    ]
    if report.schema is None and report.fields:
        lines.append(_row(N_("fields"), ", ".join(report.fields)))
    if report.token_stats is not None:
        lines += token_lines(report.token_stats)
    lines.extend(_row(N_("note"), _(note) + (_(_HOW_TO_MEASURE) if note == NO_TOKENIZER_NOTE else ""))
                 for note in report.notes)
    if report.issue_count:
        lines.append("")
        lines.append(_("Problems ({count}):").format(count=f"{report.issue_count:,}"))
        lines.extend(str(issue) for issue in report.issues)
        hidden = report.issue_count - len(report.issues)
        if hidden:
            lines.append(_("... and {count} more (raise --max-errors to list them)").format(count=f"{hidden:,}"))
    return "\n".join(lines)


def render_previews(previews: list[Any], template: str) -> str:
    """The examples as training sees them, trained spans between the marks, the cut marked."""
    if not previews:
        return _("\nNo examples to show")
    lines = ["", _("Examples as training sees them ({template}; {open}…{close} carries the loss, {cut} is where "
                   "max_seq_length cuts):").format(template=template or _("no chat template: plain text"),
                                                   open=TRAINED_OPEN, close=TRAINED_CLOSE, cut=CUT_MARK)]
    for example in previews:
        lines.append(_("--- {where}: {tokens} tokens, {trained} trained ---").format(
            where=example.where, tokens=f"{example.tokens:,}", trained=f"{example.trained_tokens:,}"))
        if example.problem:
            lines.append(_("(not rendered: {why})").format(why=example.problem))
            continue
        out: list[str] = []
        cut = False
        for seg in example.segments:
            if seg.cut and not cut:
                out.append(CUT_MARK)
                cut = True
            out.append(f"{TRAINED_OPEN}{seg.text}{TRAINED_CLOSE}" if seg.trained else seg.text)
        lines.append("".join(out))
    return "\n".join(lines)


def _preview_dict(example: Any) -> dict[str, Any]:
    return {"where": example.where, "tokens": example.tokens, "trained_tokens": example.trained_tokens,
            "problem": example.problem,
            "segments": [{"text": s.text, "trained": s.trained, "cut": s.cut} for s in example.segments]}


def _progress_line() -> Any:
    """How far the reading is, on stderr, when stderr is a terminal (a log or a pipe gets the report only)."""
    if not sys.stderr.isatty():
        return None
    from lora_tui.cli.adapters import ProgressLine

    return ProgressLine()
