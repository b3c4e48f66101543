"""The monitor's log pane: long lines wrap at the pane's width, and the view keeps to the end of the log."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from lora_tui.ui.widgets.wrapped_log import CONTINUATION, WrappedLog, wrap_line

LINE = "step 37/69  epoch 1.62  loss 5.4894  grad norm 0.6778  lr 4.87e-5  1,234 tok/s"


def test_wrap_line_keeps_every_word_within_the_width() -> None:
    rows = wrap_line(LINE, 30)
    assert rows == ["step 37/69  epoch 1.62  loss", "  5.4894  grad norm 0.6778  lr", "  4.87e-5  1,234 tok/s"]
    assert wrap_line(LINE, 200) == [LINE]
    folded = wrap_line("x" * 25, 10)
    assert folded == ["x" * 10, CONTINUATION + "x" * 8, CONTINUATION + "x" * 7]
    text = "日本語のテキストです。とても長い行です"  # two cells a character
    wide = wrap_line(text, 10)
    assert all(cell_len(row) <= 10 for row in wide) and "".join(r.strip() for r in wide) == text


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="above")
            yield WrappedLog(max_lines=100, id="log")


def _last_visible(log: WrappedLog) -> str:
    top = round(log.scroll_y)
    rows = [log.lines[i] for i in range(top, min(len(log.lines), top + log.scrollable_content_region.height))]
    return [r for r in rows if r.strip()][-1]


async def test_long_lines_wrap_and_wrap_again_when_the_width_changes() -> None:
    app = LogApp()
    async with app.run_test(size=(40, 20)) as pilot:
        log = app.query_one(WrappedLog)
        await pilot.pause()
        log.write_lines([LINE, "short"])
        await pilot.pause()
        width = log.scrollable_content_region.width
        assert len(log.lines) > 2 and all(cell_len(row) <= width for row in log.lines)
        assert " ".join(" ".join(log.lines).split()) == f"{' '.join(LINE.split())} short"  # every word is there
        assert log.max_scroll_x == 0
        await pilot.resize_terminal(120, 20)
        await pilot.pause()
        assert log.lines[:2] == [LINE, "short"]  # wide enough: one row each again
        assert list(log.raw_lines) == [LINE, "short"]


async def test_the_log_keeps_its_last_lines_only() -> None:
    app = LogApp()
    async with app.run_test(size=(40, 20)) as pilot:
        log = app.query_one(WrappedLog)
        await pilot.pause()
        log.write_lines([f"line {i}" for i in range(250)])
        await pilot.pause()
        assert len(log.raw_lines) == 100 and log.raw_lines[0] == "line 150" and len(log.lines) <= 100


async def test_a_pane_that_gets_shorter_still_shows_the_last_line() -> None:
    app = LogApp()
    async with app.run_test(size=(40, 20)) as pilot:
        log = app.query_one(WrappedLog)
        await pilot.pause()
        log.write_lines([f"step {i}" for i in range(1, 41)])
        await pilot.pause()
        assert _last_visible(log) == "step 40"
        app.query_one("#above", Static).update("\n".join(["advice"] * 10))  # the pane loses 10 rows
        await pilot.pause()
        await pilot.pause()
        assert _last_visible(log) == "step 40"
        log.write_lines(["step 41"])
        await pilot.pause()
        assert _last_visible(log) == "step 41"


async def test_a_person_who_scrolled_up_is_not_pulled_down() -> None:
    app = LogApp()
    async with app.run_test(size=(40, 20)) as pilot:
        log = app.query_one(WrappedLog)
        await pilot.pause()
        log.write_lines([f"step {i}" for i in range(1, 61)])
        await pilot.pause()
        log.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        assert not log.following
        log.write_lines(["step 61"])
        await pilot.pause()
        assert log.scroll_y == 0
        log.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        log.write_lines(["step 62"])
        await pilot.pause()
        assert log.following and _last_visible(log) == "step 62"
