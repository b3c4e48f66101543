"""Pilot test of the Runs screen: each run's state and best eval loss, and a long name wrapped, not cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from lora_tui.ui.app import make_app
from tests.helpers import waits
from tests.helpers.run_dirs import recorded_run

LONG = "a-run-directory-with-a-name-much-longer-than-the-table-has-room-for-at-80-columns"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_runs_screen_shows_the_best_eval_and_wraps_long_names(tmp_path: Path, size: tuple[int, int]) -> None:
    root = tmp_path / "runs"
    recorded_run(root / "evaluated", [2.0, 1.8, 1.6, 1.5], evals={2: 1.9, 4: 1.7})
    recorded_run(root / LONG, [2.0, 1.9], state="failed")
    app = make_app(runs_root=root, gpu_interval=0, start="runs")
    async with app.run_test(size=size) as pilot:
        table = app.screen.query_one("#runs-table", DataTable)
        await waits.wait_until(pilot, lambda: table.row_count == 2, 10, "the two runs")
        rows = {str(table.get_row_at(i)[-1]): [str(c) for c in table.get_row_at(i)] for i in range(2)}
        assert rows["evaluated"][:3] == ["finished", "4/4", "1.7000 @ 4"]
        assert rows[LONG][:3] == ["failed", "2/2", "-"]
        widths = sum(c.get_render_width(table) for c in table.ordered_columns)
        assert widths <= size[0] - 2  # every column on screen: nothing scrolled out at the right
        long_row = table.rows[next(k for k in table.rows if str(k.value).endswith(LONG))]
        # An auto-height row is measured on the table's next update, not when it is added.
        await waits.wait_until(pilot, lambda: long_row.height > 0, 10, "the long row measured")
        last = table.ordered_columns[-1].width
        assert long_row.height == -(-len(LONG) // last) > 1  # the name wraps onto the lines it needs
