"""The Review step shows the evaluation split (how many examples it holds out, or why none) and edits it, with
errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan, held_out
from lora_tui.ui.app import make_app
from lora_tui.ui.screens.review import eval_split_text
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits


def _text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def _app(tmp_path: Path, examples: int):
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(SAMPLE_DATA_PATH.read_text(encoding="utf-8").splitlines(keepends=True)[:examples]),
                    encoding="utf-8")
    return make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                    runs_root=tmp_path / "runs", gpu_interval=0,
                    plan=TrainingPlan(data=str(data), output=str(tmp_path / "runs" / "r")))


async def _to_review(pilot) -> None:
    await waits.settle(pilot)
    for _ in range(4):
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
    assert pilot.app.screen.query("#review-eval-split")


async def test_review_shows_and_edits_the_eval_split(tmp_path: Path) -> None:
    app = _app(tmp_path, 360)
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_review(pilot)
        assert app.state.plan.eval_split == 0.05
        assert "5.0% (18 of 360 examples held out)" in _text(app, "#review-eval-status")
        field = app.screen.query_one("#review-eval-split", Input)
        assert field.value == "0.05"
        field.value = "0.1"
        await pilot.pause()
        assert app.state.plan.eval_split == 0.1 and app.state.sources["eval_split"] == "given"
        assert "10.0% (36 of 360 examples held out)" in _text(app, "#review-eval-status")
        assert "--eval-split 0.1" in _text(app, "#review-cmd")
        field.value = "0.7"
        await pilot.pause()
        error = _text(app, "#error")
        assert "`eval_split` must be in [0, 0.5], got 0.7" in error and "--" not in error
        assert field.has_class("-invalid") and app.state.plan.eval_split == 0.1  # the plan keeps the last good one
        field.value = "lots"
        await pilot.pause()
        assert "`eval_split`" in _text(app, "#error") and "is not a number" in _text(app, "#error")
        field.value = "0"
        await pilot.pause()
        assert _text(app, "#error") == "" and not field.has_class("-invalid")
        assert app.state.plan.eval_split == 0
        assert _text(app, "#review-eval-status").startswith("none: turned off")


async def test_review_says_why_no_split_is_held_out_from_small_data(tmp_path: Path) -> None:
    app = _app(tmp_path, 40)
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_review(pilot)
        assert app.state.plan.eval_split == 0
        assert "none: 40 examples: fewer than 100" in _text(app, "#review-eval-status")


@pytest.mark.parametrize(("examples", "split", "held"), [(360, 0.05, 18), (333, 0.0511, 18), (3, 0.5, 0), (100, 0, 0)])
def test_held_out_counts_as_the_training_split_does(examples: int, split: float, held: int) -> None:
    assert held_out(examples, split) == held
    if split and examples >= 4:
        import datasets

        split_ds = datasets.Dataset.from_dict({"x": list(range(examples))}).train_test_split(test_size=split, seed=1)
        assert len(split_ds["test"]) == held
    assert eval_split_text(0.05, None, None).endswith("(the data is not measured yet)")
