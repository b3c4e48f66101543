"""The wizard driven with a Pilot on faked hardware and real small data files: the values shown are core's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from lora_tui.core.lora_math import compute_lora_math
from lora_tui.core.memory import plan_estimate
from lora_tui.core.models.modules import load_inventory
from lora_tui.core.recommend import recommend
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits


def text_of(app, selector: str) -> str:
    """The plain text a Static shows."""
    return str(app.screen.query_one(selector, Static).render())


def write_chat(path: Path, n: int) -> Path:
    """A small valid chat JSONL file with n examples."""
    lines = [json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                      {"role": "assistant", "content": f"answer {i}"}]}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def settle(pilot, app) -> None:
    """Wait until every worker has finished and its message was handled."""
    await waits.settle(pilot)


async def next_step(pilot, app) -> None:
    await pilot.press("ctrl+n")
    await settle(pilot, app)


@pytest.mark.parametrize("gpu_gib, tier", [(None, None), (8, "standard"), (24, "high")])
async def test_wizard_shows_core_values(tmp_path: Path, gpu_gib: int | None, tier: str | None) -> None:
    data = write_chat(tmp_path / "chat.jsonl", 40)
    app = make_app(hardware_probe=fakes.probe(gpu_gib), gpu_query=fakes.gpu_query(gpu_gib),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        summary = text_of(app, "#hw-summary")
        if gpu_gib is None:
            assert "Backend: CPU" in summary
        else:
            assert f"tier: {tier}" in summary and "Backend: CUDA" in summary
        await next_step(pilot, app)
        app.screen.query_one("#data-path", Input).value = str(data)
        await pilot.click("#data-path")
        await pilot.press("enter")
        await settle(pilot, app)
        assert "40" in text_of(app, "#data-summary") and "small" in text_of(app, "#data-summary")
        assert app.state.plan.data == str(data)
        await next_step(pilot, app)
        await next_step(pilot, app)
        inv = load_inventory("demo")
        hw = fakes.hardware(gpu_gib)
        rec = recommend(vram_bytes=hw.usable_vram_bytes, inventory=inv, data_report=app.state.data_report)
        for name in ("lora_r", "lora_alpha", "learning_rate", "per_device_train_batch_size",
                     "gradient_accumulation_steps"):
            shown = app.screen.query_one(f"#set-{name}", Input).value
            assert float(shown) == float(rec.values[name]), name
            assert text_of(app, f"#why-{name}") == rec.reasons[name]
        math = compute_lora_math(inv, r=rec.values["lora_r"], lora_alpha=rec.values["lora_alpha"],
                                 target_modules=rec.values["target_modules"])
        assert f"{math.trainable_params:,}" in text_of(app, "#totals")
        assert f"({math.scaling_label})" in text_of(app, "#scaling")
        est = plan_estimate(inv, app.state.plan, hw.usable_vram_bytes)
        verdict = text_of(app, "#verdict")
        assert ("no GPU" in verdict) if gpu_gib is None else (est.verdict.replace("_", " ") in verdict)
        await next_step(pilot, app)
        assert f"--lora-r {rec.values['lora_r']}" in text_of(app, "#review-cmd")
        assert f"--data {data}" in text_of(app, "#review-cmd")


async def test_editing_r_updates_table_live_and_back_forward_keeps_entries(tmp_path: Path) -> None:
    app = make_app(hardware_probe=fakes.probe(24), gpu_query=fakes.gpu_query(24),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        for _ in range(3):
            await next_step(pilot, app)
        r_input = app.screen.query_one("#set-lora_r", Input)
        r_input.value = "64"
        await pilot.pause()
        inv = load_inventory("demo")
        expected = compute_lora_math(inv, r=64, lora_alpha=app.state.plan.lora_alpha,
                                     target_modules=app.state.plan.target_modules)
        assert f"{expected.trainable_params:,}" in text_of(app, "#totals")
        assert text_of(app, "#why-lora_r") == "set by you"
        r_input.value = "zero"
        await pilot.pause()
        assert r_input.has_class("-invalid") and "lora_r" in text_of(app, "#error")
        r_input.value = "64"
        await pilot.pause()
        await pilot.press("ctrl+b", "ctrl+b")
        await settle(pilot, app)
        await pilot.press("ctrl+n", "ctrl+n")
        await settle(pilot, app)
        assert app.screen.query_one("#set-lora_r", Input).value == "64"
        assert app.state.plan.lora_r == 64
        await next_step(pilot, app)
        assert "--lora-r 64" in text_of(app, "#review-cmd")


async def test_will_not_fit_shows_remedies_and_fit_applies_them(tmp_path: Path) -> None:
    app = make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await next_step(pilot, app)
        await next_step(pilot, app)
        app.screen.query_one("#model", Input).value = "Llama-3.2-3B"  # 7B models fit 8 GB in no precision
        await pilot.click("#model")
        await pilot.press("enter")
        await settle(pilot, app)
        assert app.state.inventory.model_id.endswith("Llama-3.2-3B")
        await next_step(pilot, app)
        app.screen.query_one("#set-per_device_train_batch_size", Input).value = "8"
        await pilot.pause()
        assert "will not fit" in text_of(app, "#verdict")
        assert "Remedies" in text_of(app, "#remedies")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert app.state.plan.per_device_train_batch_size < 8
        assert "will not fit" not in text_of(app, "#verdict") or "4-bit" in text_of(app, "#remedies")


async def test_bad_data_file_is_shown_inline_with_file_line_and_blocks_next(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n', encoding="utf-8")
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await next_step(pilot, app)
        app.screen.query_one("#data-path", Input).value = str(bad)
        await pilot.click("#data-path")
        await pilot.press("enter")
        await settle(pilot, app)
        assert f"{bad}:2" in text_of(app, "#data-issues")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.STEP == "data"
        assert "problem" in text_of(app, "#error")


def write_tokenizer(folder: Path) -> Path:
    """A word-level tokenizer.json (what a model directory holds), built with the light `tokenizers` library."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "question": 1, "answer": 2, "user": 3, "assistant": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder


@pytest.mark.parametrize("where", ["demo-built", "local-dir", "demo-not-built"])
async def test_data_step_measures_tokens_when_the_models_tokenizer_is_local(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    from lora_tui.core.dataset.report import inspect_dataset
    from lora_tui.core.plan import TrainingPlan

    cache = tmp_path / "cache"
    monkeypatch.setenv("LORA_TUI_CACHE", str(cache))
    model = "demo"
    if where == "demo-built":
        write_tokenizer(cache / "demo-model")
    elif where == "local-dir":
        model = str(write_tokenizer(tmp_path / "my-model"))
    data = write_chat(tmp_path / "chat.jsonl", 30)
    plan = TrainingPlan(model=model, data=str(data), output=str(tmp_path / "runs" / "r"), max_seq_length=512)
    app = make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0, plan=plan, start="data")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        summary = text_of(app, "#data-summary")
        # the first visit with the demo model builds its tokenizer (a second), so its tokens are measured at once
        folder = {"demo-built": cache / "demo-model", "local-dir": Path(model),
                  "demo-not-built": cache / "demo-tokenizer"}[where]
        stats = inspect_dataset(data, tokenizer=folder / "tokenizer.json", max_seq_length=512).token_stats
        assert stats is not None and stats.max > 0
        assert f"median {stats.median}, p95 {stats.p95}, max {stats.max}; 0 over 512" in summary
        assert app.state.data_report.token_stats == stats


async def test_phi3_standard_pattern_gives_its_fused_modules(tmp_path: Path) -> None:
    from textual.widgets import RadioButton

    app = make_app(hardware_probe=fakes.probe(24), gpu_query=fakes.gpu_query(24), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0, start="task")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        app.screen.query_one("#model", Input).value = "phi-3-mini-4k-instruct"
        await pilot.click("#model")
        await pilot.press("enter")
        await settle(pilot, app)
        assert app.state.plan.model == "phi-3-mini-4k-instruct"
        minimal = next(b for b in app.screen.query(RadioButton) if b.name == "minimal")
        minimal.value = True
        await settle(pilot, app)
        assert app.state.plan.target_modules == ["qkv_proj"]
        standard = next(b for b in app.screen.query(RadioButton) if b.name == "standard")
        standard.value = True
        await settle(pilot, app)
        assert app.state.plan.target_modules == ["qkv_proj", "o_proj"]
        assert app.screen.query_one("#custom-targets", Input).value == "qkv_proj,o_proj"
        assert "On this model: qkv_proj, o_proj" in text_of(app, "#pattern-why")
        await next_step(pilot, app)
        assert type(app.screen).__name__ == "AdvisorScreen"
        assert app.screen.query_one("#set-target_modules", Input).value == "qkv_proj,o_proj"
        assert "Trainable" in text_of(app, "#totals") and "No module matches" not in text_of(app, "#totals")


@pytest.mark.parametrize("key", ["ctrl+a", "ctrl+b", "ctrl+e", "ctrl+f", "ctrl+d"])
async def test_line_editing_keys_stay_in_the_input(tmp_path: Path, key: str) -> None:
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0, start="task")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.click("#model")
        await pilot.press(key)
        await settle(pilot, app)
        assert type(app.screen).__name__ == "TaskScreen"
        assert isinstance(app.focused, Input) and app.focused.id == "model"
        await pilot.click("#task")  # off the input, ctrl+b is Back again
        await pilot.press("ctrl+b")
        await settle(pilot, app)
        assert type(app.screen).__name__ == "DataScreen"


async def test_a_new_model_measures_the_data_again_with_its_own_tokenizer(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LORA_TUI_CACHE", str(cache))
    write_tokenizer(cache / "demo-model")  # the demo's tokenizer is built: the Data step measures with it
    app = make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await next_step(pilot, app)
        assert app.state.data_report.token_stats is not None and app.state.data_model == "demo"
        assert app.state.sources["max_seq_length"] == "recommended" and app.state.plan.max_seq_length < 1024
        await next_step(pilot, app)
        app.screen.query_one("#model", Input).value = "Llama-3.2-3B"  # its tokenizer is not on this machine
        await pilot.click("#model")
        await pilot.press("enter")
        await settle(pilot, app)
        assert app.state.data_model == "Llama-3.2-3B" and app.state.data_report.token_stats is None
        assert app.state.plan.max_seq_length == 1024  # what `lora-tui train --model Llama-3.2-3B` plans too
