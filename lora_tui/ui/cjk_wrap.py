"""Line breaking for Japanese (and other CJK) text in the TUI: a line may break between any two CJK characters.

Rich and Textual wrap text at whitespace only. Japanese has none between words, so a sentence after an English
word or a number ("RAM 23.5 GiB）で行います。…") is one "word": it cannot start on the current line, goes whole to
the next one and is folded there, leaving ragged short lines on every screen. `install()` replaces the word
patterns both libraries look up at each wrap (`rich._wrap.re_word`, `textual._wrap.re_chunk`) with ones that make
each CJK character a break opportunity, following the usual Japanese rules (kinsoku): closing brackets and
punctuation, small kana and the long-vowel mark never start a line, opening brackets never end one.

Text without CJK characters is split exactly as before (a test compares the two on English text). If either
library stops having the attribute, nothing is patched and wrapping stays as the library does it.
"""

from __future__ import annotations

import re

CJK = ("\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
       "\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef")
"""Character ranges that break anywhere: CJK punctuation, kana, ideographs, Hangul and full-width forms."""

NO_START = "、。，．・：；？！）］｝」』】〕〉》〙〛ー々ゝゞぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ％"
"""Characters that must not begin a line (they stay with the character before them)."""

NO_END = "（［｛「『【〔〈《〘〚"
"""Characters that must not end a line (they stay with the character after them)."""

_UNIT = (rf"[{NO_END}]*(?:[^\s{CJK}]+|[{CJK}])[{re.escape(NO_START)}]*")
"""One unbreakable unit: an optional opening bracket, then a run of non-CJK text or one CJK character, then any
characters that may not start the next line."""

RICH_WORD = re.compile(rf"\s*{_UNIT}\s*")
"""Rich's word: leading whitespace, a unit, trailing whitespace (as its own `\\s*\\S+\\s*`)."""

TEXTUAL_CHUNK = re.compile(rf"{_UNIT}\s*|\s+")
"""Textual's chunk: a unit with its trailing whitespace, or whitespace alone (as its own `\\S+\\s*|\\s+`)."""


def install() -> bool:
    """Use the CJK-aware patterns in Rich and Textual (idempotent); False when a library lacks the hook."""
    try:
        import rich._wrap as rich_wrap
        import textual._wrap as textual_wrap
    except ImportError:
        return False
    if not (hasattr(rich_wrap, "re_word") and hasattr(textual_wrap, "re_chunk")):
        return False
    rich_wrap.re_word = RICH_WORD
    textual_wrap.re_chunk = TEXTUAL_CHUNK
    return True
