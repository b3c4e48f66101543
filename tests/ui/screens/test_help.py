"""F1 help: every point where the guide is wrong or out of date is shown with its parameter, and the README's
section lists the same table of truths."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Markdown

from lora_tui.core.tables import practice
from lora_tui.ui.app import make_app
from lora_tui.ui.screens.help import SECTIONS, help_text
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits

README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_erratum_follows_its_parameters_section() -> None:
    text = help_text()
    headings = {setting: text.index(body.splitlines()[0]) for setting, body in SECTIONS}
    errata = practice().errata
    assert len(errata) >= 8 and {e.setting for e in errata} <= set(headings)
    order = sorted(headings.values())
    for e in errata:
        line = f"*Where the guide is wrong or out of date: {e.title}.* The guide: {e.guide}. In truth: {e.truth}"
        at = text.index(line)
        start = headings[e.setting]
        following = [h for h in order if h > start]
        assert start < at < (following[0] if following else len(text)), e.title  # under its own parameter


def test_the_readme_lists_the_same_points_with_their_evidence() -> None:
    readme = " ".join(README.read_text(encoding="utf-8").split())
    section = readme[readme.index("## Where the guide is wrong or out of date"):]
    section = section[:section.index("## ", 5)]
    for e in practice().errata:
        assert f"**{e.title}** (`{e.setting}`). The guide: {e.guide}. In truth: {e.truth}" in section


async def test_f1_shows_the_help_with_the_errata(tmp_path: Path) -> None:
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        await pilot.press("f1")
        await waits.settle(pilot)
        markdown = app.screen.query_one("#help-text", Markdown)
        assert markdown.source == help_text()
        assert "Learning rates 2-10x below LoRA practice" in markdown.source
