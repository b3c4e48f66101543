"""Pilot test of the Compare view: marked on the Runs screen, the runs' settings that differ, their results and
their curves overlaid; x in steps or tokens, log scale, train/eval shown."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable, Static

from lora_tui.core import runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from lora_tui.ui.screens.compare import CompareScreen, settings_table
from lora_tui.ui.screens.runs import RunsScreen
from lora_tui.ui.widgets.overlay_chart import OverlayChart, render_overlay
from tests.helpers import waits
from tests.helpers.run_dirs import recorded_run


def _runs(root: Path) -> None:
    recorded_run(root / "r16", [2.0, 1.8, 1.6, 1.5], evals={2: 1.9, 4: 1.7})
    r32 = recorded_run(root / "r32", [2.0, 1.7, 1.4], evals={3: 1.55})
    (r32 / runs.RUN_FILE).write_text(TrainingPlan(output=str(r32), lora_r=32, lora_alpha=64,
                                                  learning_rate=5e-5).to_toml(), encoding="utf-8")
    recorded_run(root / "other", [2.5], state="failed")


async def test_mark_two_runs_and_compare_them(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    _runs(root)
    app = make_app(runs_root=root, gpu_interval=0, start="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#runs-table", DataTable)
        await waits.wait_until(pilot, lambda: table.row_count == 3, 10, "the three runs")
        names = [str(table.get_row_at(i)[-1]) for i in range(3)]
        await pilot.press("c")  # nothing marked: a hint, no Compare view
        assert isinstance(app.screen, RunsScreen)
        for name in ("r16", "r32"):
            table.move_cursor(row=names.index(name))
            await pilot.press("space")
        assert sorted(str(table.get_row_at(i)[-1]) for i in range(3)) == ["other", "● r16", "● r32"]
        await pilot.press("c")
        await waits.wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), 10, "the Compare view")
        screen = app.screen
        await waits.wait_until(pilot, lambda: screen.comparison is not None, 10, "the runs read")
        grid = settings_table(screen.comparison)
        assert [str(c.header) for c in grid.columns] == ["", "r16", "r32"]  # one column per run
        cells = [list(c._cells) for c in grid.columns]
        rows = {str(label): [str(v) for v in values] for label, *values in zip(*cells, strict=True)}
        assert rows["state"] == ["finished", "finished"] and rows["lora_r"] == ["16", "32"]
        assert rows["lora_alpha"] == ["32", "64"] and rows["final loss"] == ["1.5000", "1.4000"]
        assert rows["best eval @ step"] == ["1.7000 @ 4", "1.5500 @ 3"]
        lora_r = next(c for c in grid.columns[1]._cells if str(c) == "16")
        assert isinstance(lora_r, Text) and "yellow" in str(lora_r.style)  # a setting that differs is highlighted
        from rich.console import Console

        console = Console(width=40, record=True, color_system=None)
        console.print(settings_table(screen.comparison))
        lines = console.export_text().splitlines()
        assert max(len(line) for line in lines) <= 40  # wraps in its cells rather than running off the screen
        assert any(line.split() == ["lora_r", "16", "32"] for line in lines)
        assert "settings that differ: lora_r, lora_alpha" in str(screen.query_one("#compare-title", Static).render())
        chart = screen.query_one("#compare-chart", OverlayChart)
        assert [(c.run, c.kind, c.xs) for c in chart.curves] == [
            ("r16", "train", (1.0, 2.0, 3.0, 4.0)), ("r16", "eval", (2.0, 4.0)),
            ("r32", "train", (1.0, 2.0, 3.0)), ("r32", "eval", (3.0,))]
        shown = str(render_overlay(chart.curves, 100, 20, x_label=chart.x_label))
        assert "r16  ━ train 1.5  ╌ eval 1.7" in shown and "r32  ━ train 1.4  ╌ eval 1.55" in shown
        assert "1 (steps)" in shown
        await pilot.press("e")
        assert {c.kind for c in chart.curves} == {"train"}
        await pilot.press("l")
        assert chart.log_y and "log" in str(screen.query_one("#compare-status", Static).render())
        await pilot.press("x")  # recorded runs log no token counts: nothing to draw against tokens
        assert chart.x_label == "tokens seen" and chart.curves == ()
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


def test_log_scale_ticks_are_losses_not_logarithms() -> None:
    from lora_tui.ui.widgets.overlay_chart import Curve

    curve = Curve("a", "train", (1.0, 2.0, 3.0), (10.0, 1.0, 0.1), "cyan")
    text = str(render_overlay((curve,), 60, 12, log_y=True)).splitlines()
    assert text[0].lstrip().startswith("10│") and text[-4].lstrip().startswith("0.1│")
    assert "log loss" in text[-2] and text[-2].rstrip().endswith("3")
