"""`lora-tui inspect FILE`: check a dataset before training: format, shape, exact count, size tier, problems.

Exit status 0 when every record is valid, 2 when the file has problems (listed as `file:line: message`
after the summary) or cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lora_tui.core.units import fmt_bytes


def register(subparsers: Any) -> None:
    """Add the `inspect` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        help="validate a dataset and show its format, shape, size tier and token lengths",
        description=(
            "Stream through a data file (JSONL, JSON, CSV/TSV, Parquet, or a datasets save_to_disk "
            "directory), validate every record and report what was found. Exit status 2 on problems."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="data file or save_to_disk directory")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--tokenizer",
        metavar="DIR",
        help="directory with tokenizer.json (or a hub id already cached) for token-length statistics",
    )
    parser.add_argument(
        "--max-seq-length",
        type=int,
        metavar="N",
        default=None,
        help="sequence length to compare token counts with (default 1024)",
    )
    parser.add_argument(
        "--max-errors", type=int, metavar="N", default=50, help="list at most N problems (default 50)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Inspect the file and print the report; 2 when it has problems."""
    from lora_tui.core.dataset.report import inspect_dataset

    report = inspect_dataset(
        args.file,
        tokenizer=args.tokenizer,
        max_seq_length=args.max_seq_length,
        max_issues=args.max_errors,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_report(report))
    if report.ok:
        return 0
    noun = "problem" if report.issue_count == 1 else "problems"
    print(f"lora-tui: error: {report.path} has {report.issue_count} {noun}; fix them and inspect again",
          file=sys.stderr)
    return 2


def render_report(report: Any) -> str:
    """The human-readable report: a summary block, then one line per problem."""
    from lora_tui.core.dataset.report import SHAPES
    from lora_tui.core.tables import describe_size_tier

    shape = f"{report.shape} ({SHAPES[report.shape]})" if report.shape else "unknown"
    tier = f"{report.size_tier}: {describe_size_tier(report.size_tier)}" if report.size_tier else "none (no examples)"
    lines = [
        f"{report.path}",
        f"  format      {report.file_format}",
        f"  shape       {shape}",
        f"  examples    {report.examples:,}",
        f"  size tier   {tier}",
        f"  size        {fmt_bytes(report.bytes)}",
    ]
    stats = report.token_stats
    if stats is not None:
        lines.append(
            f"  tokens      median {stats.median:,}, p95 {stats.p95:,}, max {stats.max:,}, "
            f"mean {stats.mean:.1f} ({stats.tokenizer})"
        )
        lines.append(
            f"  too long    {stats.over_max:,} of {stats.count:,} longer than max_seq_length "
            f"{stats.max_seq_length:,}"
        )
    lines.extend(f"  note        {note}" for note in report.notes)
    if report.issue_count:
        lines.append("")
        lines.append(f"Problems ({report.issue_count:,}):")
        lines.extend(str(issue) for issue in report.issues)
        hidden = report.issue_count - len(report.issues)
        if hidden:
            lines.append(f"... and {hidden:,} more (raise --max-errors to list them)")
    return "\n".join(lines)
