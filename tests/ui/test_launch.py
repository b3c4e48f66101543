"""`lora-tui` with TUI options: which command lines open the TUI, and the TUI's own option errors."""

from __future__ import annotations

import pytest

from lora_tui.errors import UserError
from lora_tui.ui.launch import run_tui, tui_argv


@pytest.mark.parametrize("argv, expected", [
    ([], []),
    (["--tui"], []),
    (["--tui", "--runs"], ["--runs"]),
    (["--runs"], ["--runs"]),
    (["--runs-root=/data/runs", "--runs"], ["--runs-root=/data/runs", "--runs"]),
    (["--monitor", "runs/a"], ["--monitor", "runs/a"]),
    (["--light"], ["--light"]),
    (["runs", "list"], None),
    (["train", "--runs"], None),
    (["--version"], None),
])
def test_tui_argv(argv: list[str], expected: list[str] | None) -> None:
    assert tui_argv(argv) == expected


def test_bad_tui_options_are_one_line_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match=r"^unrecognized arguments: --bogus$"):
        run_tui(["--bogus"])
    with pytest.raises(UserError, match=r"--monitor .*nope: no such run directory"):
        run_tui(["--monitor", str(tmp_path / "nope")])
