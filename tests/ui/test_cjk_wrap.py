"""Japanese lines in the TUI break between characters (with the kinsoku rules), English ones exactly as before."""

from __future__ import annotations

import rich._wrap as rich_wrap
import textual._wrap as textual_wrap
from rich.cells import cell_len

from lora_tui.ui import cjk_wrap

EN = ("The guide's row uses r 8, alpha 16, dropout 0.1, lr 1e-4. Few examples are easy to memorise: a small rank "
      "and more dropout guard against overfitting. https://x.y/z?a=b  two  spaces\tand a tab")
JA = ("学習は CPU（2 コア、RAM 23.5 GiB）で行います。組み込みのデモモデルや設定を試すには十分ですが、数十億パラメー"
      "タのモデルでは GPU なら数分のところ数時間かかると見てください。")


def _rich_lines(text: str, width: int) -> list[str]:
    cuts = [0, *rich_wrap.divide_line(text, width), len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def _textual_lines(text: str, width: int) -> list[str]:
    cuts = [0, *textual_wrap.compute_wrap_offsets(text, width, 8), len(text)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def test_english_wraps_exactly_as_the_libraries_do(monkeypatch) -> None:
    import re

    monkeypatch.setattr(rich_wrap, "re_word", re.compile(r"\s*\S+\s*"))
    monkeypatch.setattr(textual_wrap, "re_chunk", re.compile(r"\S+\s*|\s+"))
    before = [(_rich_lines(EN, w), _textual_lines(EN, w)) for w in (7, 10, 20, 33, 80)]
    assert cjk_wrap.install()
    assert [(_rich_lines(EN, w), _textual_lines(EN, w)) for w in (7, 10, 20, 33, 80)] == before


def test_japanese_fills_each_line_and_keeps_the_kinsoku_rules() -> None:
    assert cjk_wrap.install()
    for lines_of in (_rich_lines, _textual_lines):
        for width in (20, 31, 40, 76):
            lines = lines_of(JA, width)
            assert "".join(lines) == JA
            assert all(cell_len(line.rstrip()) <= width for line in lines)
            # every line but the last is full to within one wide character or one short English word
            assert all(cell_len(line) >= width - 5 for line in lines[:-1]), (width, lines)
            assert not any(line[0] in cjk_wrap.NO_START for line in lines[1:]), lines
            assert not any(line.rstrip()[-1] in cjk_wrap.NO_END for line in lines[:-1]), lines
