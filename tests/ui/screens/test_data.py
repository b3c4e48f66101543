"""The Data step through make_app and a Pilot: the preview highlights what is trained, the columns are chosen
from the file's fields, and an inspection that cannot finish (a FIFO, a slow file) never leaves the step stuck."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Button, Input, Select, Static

from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from lora_tui.ui.screens import data as data_screen
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.dataset_files import chat_model_dir


def local_model(folder: Path) -> Path:
    return chat_model_dir(folder, "question answer 0 1 2")


def app_at_data(tmp_path: Path, **plan: Any) -> Any:
    plan.setdefault("output", str(tmp_path / "runs" / "r"))
    return make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8), launcher=fakes.FakeLauncher(),
                    runs_root=tmp_path / "runs", gpu_interval=0, plan=TrainingPlan(**plan), start="data")


def content(app: Any, selector: str) -> Text:
    value = app.screen.query_one(selector, Static).content
    return value if isinstance(value, Text) else Text(str(value))


def styled(text: Text, style: str) -> list[str]:
    """The pieces of `text` carrying `style`."""
    return [text.plain[span.start:span.end] for span in text.spans if str(span.style) == style]


async def test_preview_highlights_the_trained_spans(tmp_path: Path) -> None:
    model = local_model(tmp_path / "model")
    rows = [{"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "answer"}]}
            for i in range(3)]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    app = app_at_data(tmp_path, model=str(model), data=str(data))
    async with app.run_test(size=(120, 50)) as pilot:
        await waits.settle(pilot)
        preview = content(app, "#data-preview")
        assert "Preview (chat template (chat_template.jinja))" in preview.plain
        assert f"── {data}:1: 8 tokens, 2 trained" in preview.plain
        assert styled(preview, data_screen.TRAINED_STYLE)[1:] == ["answer</s>", "answer</s>"]  # [0]: the legend
        assert "<s><|user|>\nquestion 0</s>\n<|assistant|>\n" in styled(preview, data_screen.CONTEXT_STYLE)
        summary = str(app.screen.query_one("#data-summary", Static).render())
        assert "Schema  messages (messages=messages)" in summary and "Loss on  25% of the tokens" in summary
        # the advisor sizes max_seq_length from the lengths (8 tokens -> 64): the step compares with that
        assert app.state.plan.max_seq_length == 64 and "median 8, p95 8, max 8; 0 over 64" in summary
        assert app.state.reasons["max_seq_length"].startswith("the longest example is 8 tokens")


async def test_columns_are_chosen_from_the_files_fields(tmp_path: Path) -> None:
    data = tmp_path / "qa.csv"
    data.write_text("q,a,sys\nquestion 1,answer 1,\nquestion 2,answer 2,\n", encoding="utf-8")
    app = app_at_data(tmp_path, data=str(data))
    async with app.run_test(size=(120, 50)) as pilot:
        await waits.settle(pilot)
        assert "no known schema in the fields (a, q, sys)" in str(app.screen.query_one("#data-issues",
                                                                                       Static).render())
        section = app.screen.query_one("#columns-section")
        assert not section.collapsed  # open: the schema was not detected
        prompt = app.screen.query_one("#col-prompt", Select)
        assert [value for _, value in prompt._options if isinstance(value, str)] == ["q", "a", "sys"]
        prompt.value = "q"
        app.screen.query_one("#col-response", Select).value = "a"
        app.screen.query_one("#columns-apply", Button).press()
        await waits.settle(pilot)
        assert app.state.plan.columns == "prompt=q,response=a"
        assert app.state.data_report is not None and app.state.data_report.ok
        assert app.state.data_report.examples == 2
        assert "Schema  --columns (prompt=q,response=a)" in str(app.screen.query_one("#data-summary",
                                                                                    Static).render())
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert app.screen.STEP == "task"
        assert "--columns prompt=q,response=a" in app.state.plan.command_line()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
async def test_a_fifo_is_an_error_and_next_still_works(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    app = app_at_data(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        app.screen.query_one("#data-path", Input).value = str(fifo)
        await pilot.click("#data-path")
        await pilot.press("enter")
        await waits.settle(pilot, timeout=10)
        assert "a FIFO (named pipe), not a data file" in str(app.screen.query_one("#error", Static).render())
        assert "Inspecting" not in str(app.screen.query_one("#data-summary", Static).render())
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert app.screen.STEP == "task"  # the sample stays the data


def _endless(path: str, model: str, *, stop: Any = None, **kwargs: Any) -> Any:
    """An inspection that only ends when it is told to stop."""
    import time

    from lora_tui.core.dataset.report import InspectionCancelled

    while not stop():
        time.sleep(0.01)
    raise InspectionCancelled


async def test_a_slow_inspection_can_be_cancelled_and_times_out(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from lora_tui.core.dataset import report

    app = app_at_data(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        monkeypatch.setattr(report, "inspect_for_model", _endless)
        big = tmp_path / "big.jsonl"
        big.write_text('{"text": "x"}\n')
        app.screen.query_one("#data-path", Input).value = str(big)
        await pilot.click("#data-path")
        await pilot.press("enter")
        await pilot.pause()
        assert "Inspecting" in str(app.screen.query_one("#data-summary", Static).render())
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "data" and "still inspecting" in str(app.screen.query_one("#error",
                                                                                           Static).render())
        await pilot.press("escape")
        await waits.settle(pilot)
        assert "inspection cancelled" in str(app.screen.query_one("#data-summary", Static).render())
        monkeypatch.setattr(data_screen, "INSPECT_TIMEOUT_S", 0.2)
        await pilot.click("#data-path")
        await pilot.press("enter")
        await waits.wait_until(pilot, lambda: "longer than" in str(app.screen.query_one("#data-summary",
                                                                                        Static).render()),
                               what="the timeout")
        await waits.settle(pilot)
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert app.screen.STEP == "task"


async def test_the_summary_tells_how_far_a_long_inspection_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lora_tui.core.dataset import report

    monkeypatch.setattr(report, "PROGRESS_INTERVAL_S", 0.0)
    shown: list[str] = []
    original = data_screen.DataScreen._show_progress

    def recording(self: Any, path: str, event: Any) -> None:
        original(self, path, event)
        if self._inspecting is not None:
            shown.append(str(self.query_one("#data-summary", Static).render()))

    monkeypatch.setattr(data_screen.DataScreen, "_show_progress", recording)
    rows = [{"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "answer"}]}
            for i in range(2000)]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    size = f"of {data.stat().st_size / 1024:.1f} KiB"
    app = app_at_data(tmp_path, model=str(local_model(tmp_path / "model")), data=str(data))
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        assert shown and all(f"Inspecting {data}: reading and tokenizing the data: " in s for s in shown)
        assert any(size in s for s in shown)
        assert "Examples  2,000" in str(app.screen.query_one("#data-summary", Static).render())


async def test_a_hub_models_tokenizer_is_fetched_with_one_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.fake_hub import FakeHub, serve

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "cache"))
    rows = [{"messages": [{"role": "user", "content": "question 1"}, {"role": "assistant", "content": "answer"}]}]
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows * 3), encoding="utf-8")
    hub = FakeHub()
    hub.add_dir("acme/chat-1b", local_model(tmp_path / "model"))
    with serve(hub):
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        app = app_at_data(tmp_path, model="acme/chat-1b", data=str(data))
        async with app.run_test(size=(120, 40)) as pilot:
            await waits.settle(pilot)
            summary = str(app.screen.query_one("#data-summary", Static).render())
            assert "not measured: `acme/chat-1b`'s tokenizer is not on this machine (ctrl+t fetches" in summary
            assert "--" not in summary + str(app.screen.query_one("#data-notes", Static).render())
            assert app.screen.check_action("fetch_tokenizer", ()) is True
            await pilot.press("ctrl+t")
            await waits.wait_until(pilot, lambda: app.state.data_report is not None
                              and app.state.data_report.token_stats is not None)
            assert app.state.data_report.token_stats.median == 8
            assert app.screen.check_action("fetch_tokenizer", ()) is False
