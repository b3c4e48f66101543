"""The wizard in Japanese: every screen of this part shows its messages from the catalogue (no msgid missing, no
English word but names), the palette switches the language and remembers it, and snapshots at 80x24 and 120x40."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lora_tui import i18n
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.ui.app import make_app
from lora_tui.ui.settings import remembered_language
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.japanese import english_words, screen_texts

SIZES = [(80, 24), (120, 40)]
STEPS = ["HardwareScreen", "DataScreen", "TaskScreen", "AdvisorScreen", "ReviewScreen"]
DATA_WIDGETS = ("data-preview", "data-path", "output", "runfile", "review-cmd")
"""Widgets that show the person's data, paths and the command line (names), not messages."""
LATER_WIDGETS = ("memory", "verdict", "remedies", "notes", "model-status", "data-notes", "hw-notes",
                 "why-save_steps", "why-keep", "why-early_stopping")
"""Widgets whose text comes from modules a later part translates (core/memory.py, core/precision.py, core/fit.py,
core/memory_advice.py, core/models/modules.py, core/dataset/report.py, core/hardware/detect.py, and the reasons
core/resolve.py writes): only the
messages of this part are checked there, through the catalogue."""


@pytest.fixture
def japanese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Japanese session in a temporary directory, its settings file there too; English again after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_TUI_CACHE", "cache")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    i18n.missing.clear()
    i18n.set_language("ja")
    yield tmp_path
    i18n.set_language("en")


def app_for(gpu_gib: int | None = 8):
    return make_app(hardware_probe=fakes.probe(gpu_gib), gpu_query=fakes.gpu_query(gpu_gib),
                    launcher=fakes.FakeLauncher(), runs_root=Path("runs"), gpu_interval=0)


def _sample_words() -> set[str]:
    """The sample data's own words (the preview shows the data, which is not a message)."""
    import re

    return set(re.findall(r"[A-Za-z]+", SAMPLE_DATA_PATH.read_text(encoding="utf-8")))


def _english(screen, *, skip: tuple[str, ...] = DATA_WIDGETS + LATER_WIDGETS) -> dict[str, list[str]]:
    data = _sample_words()
    found = {}
    for where, text in screen_texts(screen, skip=skip).items():
        words = [w for w in english_words(text) if w not in data]
        if words:
            found[where] = words
    return found


@pytest.mark.parametrize("gpu_gib", [None, 8])
async def test_every_step_and_the_help_are_japanese(japanese: Path, gpu_gib: int | None) -> None:
    app = app_for(gpu_gib)
    async with app.run_test(size=(120, 40)) as pilot:
        seen = []
        for _ in STEPS:
            await waits.settle(pilot)
            seen.append(type(app.screen).__name__)
            assert _english(app.screen) == {}, type(app.screen).__name__
            await pilot.press("ctrl+n")
        await pilot.press("f1")
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "HelpScreen"
        help_text = screen_texts(app.screen)
        assert any("LoRA の設定のあらまし" in t for t in help_text.values())
        assert _english(app.screen) == {}
    assert seen == STEPS
    assert sorted(i18n.missing) == []  # every message asked for is in the catalogue


async def test_step_bar_footer_and_advisor_reasons_are_the_guides_terms(japanese: Path) -> None:
    app = app_for(8)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(3):
            await waits.settle(pilot)
            await pilot.press("ctrl+n")
        await waits.settle(pilot)
        texts = screen_texts(app.screen)
        steps = texts[next(k for k in texts if k.startswith("steps"))]
        assert "1 ハードウェア" in steps and "4 アドバイザー" in steps and "5 確認と開始" in steps
        assert "次へ" in texts["footer"] and "ヘルプ" in texts["footer"] and "VRAM に収める" in texts["footer"]
        why_r = texts[next(k for k in texts if k.startswith("why-lora_r"))]
        assert "ガイドの「データサイズ別推奨設定」の表、行「小 (< 1K例)」" in why_r or "標準環境 (8-16GB VRAM)" in why_r


async def test_the_palette_switches_the_language_and_remembers_it(japanese: Path) -> None:
    i18n.set_language("en")
    app = app_for(8)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert "Training data" in " ".join(screen_texts(app.screen).values())
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert "Language: 日本語" in commands
        commands["Language: 日本語"].callback()
        await waits.settle(pilot)
        texts = " ".join(screen_texts(app.screen).values())
        assert "学習データ" in texts and "Training data" not in texts
        assert app.sub_title == "LoRA ファインチューニングを、理由つきで"
        assert i18n.language() == "ja"
        assert remembered_language() == "ja"
        assert (japanese / "config" / "lora-tui" / "settings.toml").read_text() == 'language = "ja"\n'
        assert "ファイルブラウザー" not in texts  # a tooltip is not shown text; the binding's description is
        assert "参照" in texts
        await pilot.press("ctrl+n")  # a step built after the switch is Japanese too
        await waits.settle(pilot)
        assert "タスク" in " ".join(screen_texts(app.screen).values())
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert "言語: English" in commands


async def test_a_japanese_launch_writes_english_reasons(japanese: Path) -> None:
    """Run files are the same whatever the language: Review hands the launcher the plan resolved in English."""
    from lora_tui.errors import UserError

    seen = []

    def launcher(resolved, *, overwrite: bool = False, resume: bool = False):
        seen.append(resolved)
        raise UserError("stop here")

    app = make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8), launcher=launcher,
                   runs_root=Path("runs"), gpu_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(4):
            await waits.settle(pilot)
            await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert "ガイド" in app.state.reasons["lora_r"]
        await pilot.press("ctrl+l")
        await waits.settle(pilot)
    assert len(seen) == 1
    assert seen[0].plan == app.state.plan
    assert seen[0].reasons["lora_r"].startswith("the guide's")
    assert all(r.isascii() or "…" in r for r in seen[0].reasons.values())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4])
def test_ja_wizard_snapshots(snap_compare, japanese: Path, size: tuple[int, int], steps: int) -> None:
    async def go(pilot) -> None:
        await waits.settle(pilot)
        for _ in range(steps):
            await pilot.press("ctrl+n")
            await waits.settle(pilot)

    assert snap_compare(app_for(8), terminal_size=size, run_before=go)


@pytest.mark.parametrize("size", SIZES)
def test_ja_help_snapshot(snap_compare, japanese: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(8), terminal_size=size, press=["f1"], run_before=waits.settle)
