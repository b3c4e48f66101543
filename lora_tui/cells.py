"""Text laid out by terminal cells, not characters: a Japanese character takes two cells, so columns padded with
`str.ljust` or wrapped with `textwrap` drift apart. Every aligned column and wrapped paragraph of the CLI's human
output, and the TUI's text tables, go through these (rich's `cell_len` measures).

English text (one cell per character) comes out exactly as `str.ljust`/`rjust` and `textwrap.fill` give it.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from rich.cells import cell_len

NO_BREAK_BEFORE = set("、。，．,.）)」』】〕！？!?：:；;・ー％%")
"""Characters a line never starts with (Japanese line-breaking rules, kinsoku, in brief)."""
NO_BREAK_AFTER = set("（(「『【〔")
"""Characters a line never ends with."""

_TOKEN = re.compile(r"\s+|[^\s\u1100-\uffff]+|.", re.DOTALL)
"""Whitespace runs, runs of narrow characters (an English word, a number, a flag), single wide characters."""


def width(text: str) -> int:
    """How many terminal cells `text` takes."""
    return cell_len(text)


def pad(text: str, cells: int, align: str = "left") -> str:
    """`text` padded with spaces to `cells` cells (left, right); longer text is returned whole."""
    gap = max(0, cells - cell_len(text))
    return " " * gap + text if align == "right" else text + " " * gap


def table(rows: Sequence[Sequence[str]], align: str = "", sep: str = "  ") -> list[str]:
    """Rows as lines of aligned columns (each as wide as its widest cell), `align` giving `l` or `r` per column
    (left when not given), trailing spaces stripped."""
    if not rows:
        return []
    columns = max(len(r) for r in rows)
    widths = [max((cell_len(r[i]) for r in rows if i < len(r)), default=0) for i in range(columns)]
    out = []
    for row in rows:
        cells = [pad(cell, widths[i], "right" if align[i:i + 1] == "r" else "left") for i, cell in enumerate(row)]
        out.append(sep.join(cells).rstrip())
    return out


def rule(rows: Sequence[Sequence[str]], char: str = "-", sep: str = "  ") -> str:
    """A line of `char` under each column of `table(rows)`."""
    columns = max(len(r) for r in rows)
    widths = [max((cell_len(r[i]) for r in rows if i < len(r)), default=0) for i in range(columns)]
    return sep.join(char * w for w in widths)


def _tokens(text: str) -> list[str]:
    """Breakable units: words, spaces and wide characters, punctuation glued to its neighbour."""
    raw = _TOKEN.findall(text)
    tokens: list[str] = []
    for tok in raw:
        if tokens and not tok.isspace() and tok[0] in NO_BREAK_BEFORE and not tokens[-1].isspace():
            tokens[-1] += tok
        elif tokens and not tokens[-1].isspace() and tokens[-1][-1] in NO_BREAK_AFTER and not tok.isspace():
            tokens[-1] += tok
        else:
            tokens.append(tok)
    return tokens


def wrap(text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
    """`text` as lines of at most `width` cells (textwrap's lines when every character takes one cell)."""
    if cell_len(text) == len(text) and cell_len(initial_indent + subsequent_indent) == len(
            initial_indent + subsequent_indent):
        return textwrap.wrap(text, width=width, initial_indent=initial_indent, subsequent_indent=subsequent_indent)
    text = " ".join(text.split())
    lines: list[str] = []
    line, used, fresh = initial_indent, cell_len(initial_indent), True
    for tok in _tokens(text):
        size = cell_len(tok)
        if tok.isspace():
            if not fresh:
                line, used = line + " ", used + 1
            continue
        if used + size > width and not fresh:
            lines.append(line.rstrip())
            line, used = subsequent_indent, cell_len(subsequent_indent)
        while used + size > width and len(tok) > 1:  # a token longer than a line: cut it by cells
            cut = _fit(tok, width - used)
            lines.append(line + tok[:cut])
            tok, size = tok[cut:], cell_len(tok[cut:])
            line, used = subsequent_indent, cell_len(subsequent_indent)
        line, used, fresh = line + tok, used + size, False
    if not fresh:
        lines.append(line.rstrip())
    return lines


def _fit(tok: str, cells: int) -> int:
    """How many characters of `tok` fit in `cells` cells (at least one)."""
    used = 0
    for i, ch in enumerate(tok):
        used += cell_len(ch)
        if used > cells:
            return max(1, i)
    return len(tok)


def fill(text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> str:
    """`wrap` joined into one string."""
    return "\n".join(wrap(text, width, initial_indent, subsequent_indent))
