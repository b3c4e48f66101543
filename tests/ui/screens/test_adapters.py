"""Pilot test of the Adapters screen in the app `make_app` builds: list, details, streamed answers, switching,
merge."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import DataTable, Static

from lora_tui.inference.session import AdapterSession, GenerationSettings
from lora_tui.ui.app import make_app
from lora_tui.ui.screens.adapters import AdaptersScreen
from tests.helpers import waits
from tests.helpers.adapter_fakes import fake_adapter


def text_of(screen: AdaptersScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_adapters_screen(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for src in adapter_pair:
        shutil.copytree(src, root / src.name)
    fake_adapter(root / "failed", state="failed", weights=False)
    app = make_app(runs_root=root, gpu_interval=0, start="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(AdaptersScreen(root, max_new_tokens=6, device="cpu"))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AdaptersScreen)
        table = screen.query_one("#adapter-list", DataTable)
        assert table.row_count == 3
        # the prompt has the focus at once; up/down still move through the list
        assert app.focused is screen.query_one("#adapter-prompt")
        start = table.cursor_row
        await pilot.press("down")
        assert table.cursor_row == min(start + 1, 2) and app.focused is screen.query_one("#adapter-prompt")
        # move to the chat adapter and read its details
        names = [str(table.get_row_at(i)[-1]) for i in range(3)]
        table.move_cursor(row=names.index("chat"))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "rank r = 4, lora_alpha = 8" in text_of(screen, "#adapter-details")

        await pilot.click("#adapter-prompt")
        await pilot.press(*"hello", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        want = AdapterSession.for_adapters([root / "chat"], device="cpu")
        settings = GenerationSettings(max_new_tokens=6)
        assert screen.answers["base"] == want.answer("hello", None, settings) != ""
        assert screen.answers["adapter"] == want.answer("hello", "chat", settings)
        assert text_of(screen, "#answer-adapter") == screen.answers["adapter"]
        session = screen.session
        # every wait was shown: loading the base, the adapter, then each answer token by token; then the bar went
        stages = list(dict.fromkeys(e.stage for e in screen.progress))
        assert stages[0].startswith("loading base model ") and stages[1] == "loading adapter chat onto the base"
        assert stages[2:] == ["generating the base model's answer", "generating the chat's answer", "answered"]
        generating = [e for e in screen.progress if e.stage.startswith("generating")]
        assert generating[0].total == 6 and generating[0].unit == "tokens"
        assert screen.progress[-1].final and not screen.query_one("#adapter-progress-row").display

        # switch to the code adapter: same loaded base, a second adapter on it
        table.move_cursor(row=names.index("code"))
        await pilot.pause()
        await pilot.click("#adapter-prompt")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.session is session and list(session.adapters) == ["chat", "code"]
        want.add(root / "code")
        assert screen.answers["adapter"] == want.answer("hello", "code", settings)

        # a run without an adapter is refused inline
        table.move_cursor(row=names.index("failed"))
        await pilot.pause()
        await pilot.click("#adapter-prompt")
        await pilot.press("enter")
        await pilot.pause()
        assert "Select a loadable adapter" in text_of(screen, "#adapter-status")

        # merge the code adapter
        table.move_cursor(row=names.index("code"))
        await pilot.pause()
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        merged = root / "code-merged"
        assert screen.merged == [str(merged)] and (merged / "model.safetensors").is_file()
        assert "merged into" in text_of(screen, "#adapter-status")
        merging = [e for e in screen.progress if e.stage.startswith("merging")]
        assert merging[-1].done == merging[-1].total > 0 and screen.progress[-1].final
        # a second merge never replaces the first: it goes to the next free name
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.merged == [str(merged), str(root / "code-merged-2")]
        assert (merged / "model.safetensors").is_file() and "--" not in text_of(screen, "#adapter-status")


async def test_a_merge_stopped_with_ctrl_t_writes_nothing(adapter_pair: tuple[Path, Path], tmp_path: Path,
                                                          monkeypatch) -> None:
    from lora_tui.inference import merge as merge_mod

    root = tmp_path / "runs"
    shutil.copytree(adapter_pair[1], root / "code")
    original = merge_mod._merge_modules

    def slow_merge(peft_model, tracker):  # holds the merge at its first stage until the stop comes
        tracker.stage("merging: W <- W + scaling x B @ A", 1, "modules")
        tracker.cancel.wait(20)
        return original(peft_model, tracker)

    monkeypatch.setattr(merge_mod, "_merge_modules", slow_merge)
    app = make_app(runs_root=root, gpu_interval=0, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(AdaptersScreen(root, max_new_tokens=6, device="cpu"))
        await pilot.pause()
        screen = app.screen
        await pilot.press("ctrl+g")
        await waits.wait_until(pilot, lambda: screen.progress and screen.progress[-1].stage.startswith("merging"),
                               20, "the merge's progress")
        assert screen.query_one("#adapter-progress-row").display
        assert "merging: W <- W + scaling x B @ A: 0/1 modules" in text_of(screen, "#adapter-progress-text")
        await pilot.press("ctrl+t")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "merge stopped: nothing was written" in text_of(screen, "#adapter-status")
        assert screen.progress[-1].cancelled and not screen.query_one("#adapter-progress-row").display
        assert sorted(p.name for p in root.iterdir()) == ["code"]  # no merged model, no partial copy
