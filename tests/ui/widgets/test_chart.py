"""The loss chart: series placed by step, and the best eval step marked on the plot and in the legend."""

from __future__ import annotations

from lora_tui.ui.widgets.chart import MARK_CHAR, Mark, Series, plot, render_chart


def _dot_columns(grid, style: str) -> set[int]:
    return {c for row in grid for c, (bits, s) in enumerate(row) if bits and s == style}


def test_a_series_with_steps_sits_over_the_steps_it_was_measured_at() -> None:
    train = Series("train", tuple(3.0 - 0.05 * i for i in range(40)), "train", steps=tuple(range(1, 41)))
    evals = Series("eval", (2.8, 2.5), "eval", steps=(20, 40))
    grid = plot([train, evals], 40, 4)
    columns = _dot_columns(grid, "eval")
    # step 20 of 1..40 falls in the middle of the plot, step 40 at its right edge; nothing left of the middle
    assert max(columns) == 39 and min(columns) >= 18 and 0 in _dot_columns(grid, "train")


def test_a_series_without_steps_is_spread_over_the_width() -> None:
    grid = plot([Series("eval", (2.8, 2.5, 2.0), "eval")], 10, 4)
    assert _dot_columns(grid, "eval") == {0, 1}  # three points, one per dot column, from the left


def test_the_mark_is_drawn_at_its_step_and_named_in_the_legend() -> None:
    train = Series("train", tuple(3.0 - 0.05 * i for i in range(40)), "train", steps=tuple(range(1, 41)))
    evals = Series("eval", (2.6, 2.2, 2.4), "eval", steps=(10, 20, 40))
    text = render_chart([train, evals], 60, 8, Mark(20, 2.2, "best eval 2.2000 at step 20")).plain
    rows = text.splitlines()
    marked = [(r, row.index(MARK_CHAR)) for r, row in enumerate(rows[:-1]) if MARK_CHAR in row]
    assert len(marked) == 1
    axis = rows[0].index("│") + 1
    column = marked[0][1] - axis
    plot_width = len(rows[0]) - axis
    assert abs(column - round((20 - 1) / 39 * (plot_width - 1))) <= 1  # over step 20 of 1..40
    assert rows[-1].endswith(f"{MARK_CHAR} best eval 2.2000 at step 20")


def test_no_mark_no_diamond() -> None:
    text = render_chart([Series("train", (3.0, 2.0), "train", steps=(1, 2))], 30, 4).plain
    assert MARK_CHAR not in text and "train 2" in text


def test_the_legend_keeps_to_the_charts_width_by_cells() -> None:
    from rich.cells import cell_len

    from lora_tui.ui.widgets.chart import legend

    series = [Series("学習", (2.0, 0.5), "train"), Series("評価", (1.8,), "eval")]
    mark = Mark(15, 1.5, "最良の評価損失 1.5000（ステップ 15）", short="1.5000 @ 15")
    assert legend(series, mark, 70).plain.endswith("◆ 最良の評価損失 1.5000（ステップ 15）")
    assert legend(series, mark, 58).plain == " ━ 学習 0.5 ━ 評価 1.8 ◆ 1.5000 @ 15"  # the label does not fit
    cut = legend(series, mark, 20).plain
    assert cell_len(cut) <= 20 and cut.endswith("…")
