"""The wizard in Japanese: every screen of this part shows its messages from the catalogue (no msgid missing, no
English word but names), the palette switches the language and remembers it, and snapshots at 80x24 and 120x40."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lora_tui import i18n
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.ui.app import make_app
from lora_tui.ui.settings import remembered_language
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.japanese import english_words, plain, screen_texts

SIZES = [(80, 24), (120, 40)]
STEPS = ["HardwareScreen", "DataScreen", "TaskScreen", "AdvisorScreen", "ReviewScreen"]
DATA_WIDGETS = ("data-preview", "data-path", "output", "runfile", "review-cmd")
"""Widgets that show the person's data, paths and the command line (names), not messages."""
LATER_WIDGETS = ("why-save_steps", "why-keep", "why-early_stopping")
"""Widgets whose text comes from modules not yet translated (the save/keep/early-stopping reasons): only the
messages asked for through the catalogue are checked there."""


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


def app_for(gpu_gib: int | None = 8, **kwargs: Any):
    return make_app(hardware_probe=fakes.probe(gpu_gib), gpu_query=fakes.gpu_query(gpu_gib),
                    launcher=fakes.FakeLauncher(), runs_root=Path("runs"), gpu_interval=0, **kwargs)


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


async def _advisor_texts(app, pilot) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Walk from the Hardware step to the Advisor; what each of its widgets reads."""
    for _ in range(3):
        await waits.settle(pilot)
        await pilot.press("ctrl+n")
    await waits.settle(pilot)
    return screen_texts(app.screen)


async def test_step_bar_footer_and_advisor_reasons_are_the_guides_terms(japanese: Path) -> None:
    app = app_for(8)
    async with app.run_test(size=(120, 40)) as pilot:
        texts = await _advisor_texts(app, pilot)
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
    from lora_tui.core.plan import TrainingPlan

    # a data file inside the working directory, so the paths shown are the same on every machine
    sample = SAMPLE_DATA_PATH.read_text(encoding="utf-8").splitlines(keepends=True)[:40]
    Path("chats.jsonl").write_text("".join(sample), encoding="utf-8")

    async def go(pilot) -> None:
        await waits.settle(pilot)
        for _ in range(steps):
            await pilot.press("ctrl+n")
            await waits.settle(pilot)

    app = app_for(8, plan=TrainingPlan(data="chats.jsonl", output="runs/lora-run"))
    assert snap_compare(app, terminal_size=size, run_before=go)


@pytest.mark.parametrize("size", SIZES)
def test_ja_help_snapshot(snap_compare, japanese: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(8), terminal_size=size, press=["f1"], run_before=waits.settle)


# ---- part 2: the Runs, Compare and Adapters screens ----------------------------------------------------------


def _runs_and_adapters() -> list[Path]:
    """Two finished/stopped runs (the snapshot tests' own) and two adapters under ./runs."""
    from tests.helpers.adapter_fakes import fake_adapter
    from tests.ui.test_snapshots import finished_run

    first = finished_run(Path("runs"))
    second = Path("runs") / "run_r32"
    from tests.helpers.run_dirs import recorded_run

    recorded_run(second, [2.2, 1.9, 1.7, 1.6], evals={2: 1.8, 4: 1.65}, state="stopped")
    fake_adapter(Path("runs") / "chat_adapter", losses=[2.0, 1.5, 1.25])
    fake_adapter(Path("runs") / "failed_run", state="failed", weights=False)
    return [first, second]


RUN_NAMES = {"demo-run", "demo", "run", "chat", "adapter", "failed", "merged"}
"""Words of the run and adapter directory names above (names, not messages)."""


def _untranslated(screen) -> dict[str, list[str]]:
    found = {}
    for where, text in screen_texts(screen, skip=("adapter-details",)).items():
        words = [w for w in english_words(text) if w.lower() not in RUN_NAMES]
        if words:
            found[where] = words
    return found


async def test_runs_compare_and_adapters_screens_are_japanese(japanese: Path) -> None:
    first, second = _runs_and_adapters()
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                   runs_root=Path("runs"), gpu_interval=0, start="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "RunsScreen"
        texts = screen_texts(app.screen)
        assert "runs 以下の実行" in " ".join(texts.values()) and "完了" in " ".join(texts.values())
        assert "比較" in texts["footer"] and "モニターを開く" in texts["footer"]
        assert _untranslated(app.screen) == {}
        app.open_compare([first, second])
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "CompareScreen"
        texts = " ".join(screen_texts(app.screen).values())
        assert "2 件の実行を比較 · 異なる設定:" in texts and "表示: 学習と評価 (e)" in texts
        assert _untranslated(app.screen) == {}
        await pilot.press("escape")
        await waits.settle(pilot)
        await pilot.press("ctrl+a")
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "AdaptersScreen"
        texts = screen_texts(app.screen)
        assert "ベースモデルと選んだアダプターに質問（Enter）" in texts.values() and "マージ" in texts["footer"]
        assert _untranslated(app.screen) == {}
        details = app.screen.query_one("#adapter-details").content
        assert "状態:" in plain(details) or "アダプターを選んでください" in plain(details)
    assert sorted(i18n.missing) == []


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", ["runs", "compare", "adapters"])
def test_ja_runs_compare_adapters_snapshots(snap_compare, japanese: Path, size: tuple[int, int], screen: str) -> None:
    from tests.ui.test_snapshots import finished_run

    first = finished_run(Path("runs"))
    kwargs: dict = {}
    if screen == "compare":
        from tests.helpers.run_dirs import recorded_run

        second = recorded_run(Path("runs") / "run_r32", [2.2, 1.9, 1.7, 1.6], evals={2: 1.8, 4: 1.65},
                              state="stopped")
        kwargs["open_compare"] = [first, second]
    if screen == "adapters":
        from tests.helpers.adapter_fakes import fake_adapter

        fake_adapter(Path("runs") / "chat-adapter-with-a-long-descriptive-name", losses=[2.0, 1.5, 1.25])

    async def go(pilot) -> None:
        await waits.settle(pilot)
        if screen == "adapters":
            await pilot.press("ctrl+a")
            await waits.settle(pilot)

    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                   runs_root=Path("runs"), gpu_interval=0, start="runs", **kwargs)
    assert snap_compare(app, terminal_size=size, run_before=go)


# ---- part 3: the memory estimate, its verdict and the run files ----------------------------------------------


async def test_the_advisors_memory_table_is_japanese(japanese: Path) -> None:
    app = app_for(8)
    async with app.run_test(size=(120, 40)) as pilot:
        texts = await _advisor_texts(app, pilot)
        memory = texts[next(k for k in texts if k.startswith("memory"))]
        assert "固定したベースの重み" in memory and "CUDA コンテキストと断片化" in memory
        assert "パラメータ" in memory and "params" not in memory
        verdict = texts[next(k for k in texts if k.startswith("verdict"))]
        assert "auto: bf16" in verdict and ("全例を max_seq_length" in verdict or "最悪のパディング後バッチ" in verdict)
        assert english_words(memory + verdict) == []
    assert sorted(i18n.missing) == []


def test_the_tuis_launch_writes_english_run_files_and_refuses_in_japanese(japanese: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The TUI's launcher checks the plan in English, for launch.json (its warnings, its estimate); a refusal that
    only writing the run meets (a full disk) is in the language shown, and leaves nothing behind."""
    import errno
    import os
    from types import SimpleNamespace

    from lora_tui.core import launcher, run_setup
    from lora_tui.errors import UserError
    from lora_tui.ui import app as app_module

    with i18n.english():
        resolved = launcher.resolve_plan({"output": "run", "max_seq_length": 24, "max_steps": 2},
                                         vram_bytes=8 * 2**30)
    checked, real_launch = [], launcher.launch
    monkeypatch.setattr(launcher, "launch", lambda run: checked.append(run) or (Path("run"), SimpleNamespace(pid=1)))
    app_module._default_launcher(resolved)
    warnings, parts = checked[0].warnings, checked[0].memory["parts"]
    assert any("longer than" in w for w in warnings) and all(w.isascii() for w in warnings)
    assert "Frozen base weights" in [part["label"] for part in parts]

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(launcher, "launch", real_launch)
    monkeypatch.setattr(run_setup, "write_run_files", full_disk)
    with pytest.raises(UserError) as refused:
        app_module._default_launcher(resolved)
    assert str(refused.value).startswith("--output run: 実行ディレクトリに書き込めません")
    assert not Path("run").exists() and i18n.language() == "ja"


# ---- part 4: the Adapters screen's answers, merge and progress -------------------------------------------------


async def test_the_adapters_screens_answer_merge_and_progress_are_japanese(japanese: Path,
                                                                          adapter_pair: tuple[Path, Path]) -> None:
    import shutil

    from textual.widgets import Static

    from lora_tui.core import runs
    from lora_tui.ui.screens.adapters import AdaptersScreen

    root = Path("runs")
    shutil.copytree(adapter_pair[0], root / "chat")
    runs.write_status(root / "chat", runs.RunStatus(state="stopped", step=2, max_steps=3))
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), runs_root=root,
                   gpu_interval=0, start="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(AdaptersScreen(root, max_new_tokens=3, device="cpu"))
        await waits.settle(pilot)
        screen = app.screen
        await pilot.press(*"hello", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = plain(screen.query_one("#adapter-status", Static).content)
        assert status.startswith("ベース ") and status.endswith(" とアダプター chat で回答しました")
        assert [e.stage for e in screen.progress][-1] == "回答しました"
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = plain(screen.query_one("#adapter-status", Static).content)
        assert "chat-merged にマージしました（fp32、cpu、" in status and "。注意: 実行 " in status
        stages = list(dict.fromkeys(e.describe() for e in screen.progress))
        assert any(s.startswith("計画: ベースの重み（") and "CPU でマージします" in s for s in stages)
        names = {w.lower() for w in re.findall(r"[A-Za-z]+", Path(screen.session.base_dir).name)} | RUN_NAMES
        shown = "\n".join([status, *stages])
        assert [w for w in english_words(shown, left_for_later=(r"W <- W \+ scaling x B @ A",))
                if w.lower() not in names] == [], shown
    assert sorted(i18n.missing) == []
