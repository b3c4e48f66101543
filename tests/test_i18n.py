"""lora_tui.i18n and lora_tui.cells: the choice of language (flag > variable > remembered > locale > English),
lookups, the catalogue's completeness, and text laid out by terminal cells."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lora_tui import i18n
from lora_tui.cells import pad, table, width, wrap
from lora_tui.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("flag, env, remembered, expected", [
    ("ja", {"LORA_TUI_LANG": "en", "LANG": "en_US.UTF-8"}, "en", "ja"),  # the flag first
    (None, {"LORA_TUI_LANG": "ja", "LANG": "en_US.UTF-8"}, "en", "ja"),  # then the variable
    (None, {"LORA_TUI_LANG": "en", "LANG": "ja_JP.UTF-8"}, "ja", "en"),
    (None, {"LANG": "en_US.UTF-8"}, "ja", "ja"),                        # then the TUI's remembered choice
    (None, {"LANG": "ja_JP.UTF-8"}, None, "ja"),                        # then the locale
    (None, {"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, None, "en"),         # LC_ALL before LANG
    (None, {"LC_MESSAGES": "ja_JP.eucJP", "LANG": "C"}, None, "ja"),    # LC_MESSAGES before LANG
    (None, {"LC_ALL": "", "LANG": "ja"}, None, "ja"),                   # an empty variable is not set
    (None, {}, None, "en"),                                             # else English
])
def test_the_choice_order(flag: str | None, env: dict[str, str], remembered: str | None, expected: str) -> None:
    assert i18n.choose_language(flag, environ=env, remembered=remembered) == expected


def test_unknown_languages_are_user_errors_naming_where() -> None:
    with pytest.raises(UserError, match=r"^--lang 'fr': unknown; choose one of en, ja$"):
        i18n.choose_language("fr", environ={})
    with pytest.raises(UserError, match=r"^LORA_TUI_LANG 'de': unknown"):
        i18n.choose_language(None, environ={"LORA_TUI_LANG": "de"})


@pytest.mark.parametrize("argv, lang, rest", [
    (["--lang", "ja", "recommend", "--task", "chat"], "ja", ["recommend", "--task", "chat"]),
    (["recommend", "--lang=en"], "en", ["recommend"]),
    (["--lang", "ja"], "ja", []),
    (["runs", "--", "--lang", "ja"], None, ["runs", "--", "--lang", "ja"]),
])
def test_lang_option_is_read_anywhere_before_parsing(argv: list[str], lang: str | None, rest: list[str]) -> None:
    assert i18n.lang_option(argv) == (lang, rest)


def test_lookups_in_each_language() -> None:
    assert i18n._("Hardware") == "Hardware"
    with i18n.using("ja"):
        assert i18n._("Hardware") == "ハードウェア"
        assert i18n.pgettext("resource tier", "low") == "メモリ制約環境"
        assert i18n.pgettext("guide table", "data-size") == "データサイズ別推奨設定"
        assert i18n.ngettext("lora-tui: error: {path} has {count} problem; fix them and inspect again",
                             "lora-tui: error: {path} has {count} problems; fix them and inspect again",
                             3).format(path="d.jsonl", count=3).startswith("lora-tui: エラー: d.jsonl に 3 件")
        assert i18n._("not a message of lora-tui") == "not a message of lora-tui"
        assert ("ja", "not a message of lora-tui") in i18n.missing
        with i18n.english():
            assert i18n._("Hardware") == "Hardware"
    assert i18n.ngettext("{count} run", "{count} runs", 1) == "{count} run"
    i18n.missing.discard(("ja", "not a message of lora-tui"))


def test_english_reads_no_catalogue() -> None:
    code = ("import sys; from lora_tui import i18n; from lora_tui.cli import build_parser; build_parser(); "
            "print('polib' in sys.modules, i18n._catalogues)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", "LANG": "C"})
    assert out.stdout.strip() == "False {}"


def test_the_catalogue_translates_every_message() -> None:
    out = subprocess.run([sys.executable, "scripts/i18n_catalogue.py", "--check"], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout
    assert out.stdout == ""


def test_a_translation_may_not_invent_a_placeholder() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import i18n_catalogue as catalogue
    import polib

    po = polib.POFile()
    po.append(polib.POEntry(msgid="{count} examples", msgstr="{number} 例"))
    found = catalogue.problems(po, {(None, "{count} examples"): (None, ["here"])})
    assert found == ["here: unknown placeholder in the translation of '{count} examples': ['number']"]


def test_cells_pad_and_align_double_width_text() -> None:
    assert width("サイズ区分") == 10 and width("size tier") == 9
    assert pad("例の数", 10) == "例の数    " and pad("12", 5, "right") == "   12"
    lines = table([["モジュール", "層", "割合"], ["q_proj", "4", "12.50%"]], "lrr")
    assert lines == ["モジュール  層    割合", "q_proj       4  12.50%"]
    assert len({width(line) for line in lines}) == 1


def test_wrap_counts_cells_and_keeps_english_as_textwrap_does() -> None:
    english = "the guide's task table, row 'Dialogue / chatbot': lora_r = 16; the data-size row agrees " * 3
    assert wrap(english, 60, "    ", "    ") == textwrap.wrap(english, 60, initial_indent="    ",
                                                           subsequent_indent="    ")
    japanese = "ガイドの「タスク別推奨設定」の表、行「対話・チャットボット」: lora_r = 16。" * 4
    lines = wrap(japanese, 40, "    ", "    ")
    assert all(width(line) <= 40 for line in lines) and len(lines) > 3
    assert not any(line.strip().startswith(("、", "。", "」")) for line in lines)  # no line starts with them
    assert "".join(line.strip() for line in lines).replace(" ", "") == japanese.replace(" ", "")


def test_progress_lines_read_in_japanese() -> None:
    from lora_tui.core.demo_progress import BuildProgress
    from lora_tui.core.progress import Progress
    from tests.helpers.japanese import english_words

    events = [Progress("x", 12, 24, "modules", 6.0), Progress("x", 3 * 2**20, 6 * 2**20, "bytes", 2.0),
              Progress("x", 40, 128, "tokens", 1.0, at_most=True), Progress("x", 0, None, "", 3.0),
              Progress("x", 5, 5, "records", 4.0, final=True), Progress("x", 1, 5, "", 1.0, final=True, cancelled=True)]
    builds = [BuildProgress(stage, 37, 100, 33.1, 100.0) for stage in ("tokenizer", "pretraining", "saving")]
    english = [e.describe() for e in events] + [b.describe(now=100.0) for b in builds]
    assert english[:3] == ["x: 12/24 modules, about 6s left", "x: 3.0 MiB of 6.0 MiB, about 2s left",
                           "x: 40/128 tokens, at most 2s left"]
    assert english[6] == "building the demo model: training its tokenizer"
    assert english[7] == "building the demo model: step 37/100, about 56s left"
    i18n.missing.clear()
    with i18n.using("ja"):
        japanese = [e.describe() for e in events] + [b.describe(now=100.0) for b in builds]
    assert japanese[:2] == ["x: 12/24 モジュール、残り約 6s", "x: 6.0 MiB 中 3.0 MiB、残り約 2s"]
    assert japanese[7] == "デモモデルを作成中: ステップ 37/100、残り約 56s"
    assert english_words("\n".join(japanese)) == [] and i18n.missing == set()


def test_a_phrase_is_english_data_shown_in_the_current_language() -> None:
    import json

    from lora_tui.core.dataset.mapping import kind_of

    problem = i18n.Phrase("record is {kind}, expected a JSON object", kind=kind_of([1]))
    assert problem == "record is a list, expected a JSON object" and json.dumps(problem) == f'"{problem}"'
    with i18n.using("ja"):
        assert f"{problem}" == i18n._(problem) == "レコードがリストです。JSON のオブジェクトが必要です"
        assert str(problem) == "record is a list, expected a JSON object"  # the data itself stays English
        assert "{}".format(i18n.Phrase.of("run state", "finished")) == "完了"
