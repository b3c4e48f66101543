"""The wizard and `lora-tui train` resolve the same intent to the same plan, sources and reasons.

Each intent is applied to the wizard's state the way its screens apply it (update, choose_pattern) and given to
`lora-tui train --dry-run --json` as flags; both must agree field by field, sources and reasons included.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lora_tui.cli import main
from lora_tui.core.dataset.report import inspect_for_model
from lora_tui.core.models.modules import load_inventory
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import flag_for, fmt_value
from lora_tui.ui.state import WizardState

# (model, VRAM in GB or None, what the person sets: plan fields, or "pattern")
INTENTS: list[tuple[str, float | None, dict[str, Any]]] = [
    ("demo", None, {}),
    ("demo", 24, {"lora_r": 32}),
    ("demo", 24, {"per_device_train_batch_size": 4}),
    ("demo", None, {"num_processes": 2}),
    ("demo", 12, {"lora_r": 32, "per_device_train_batch_size": 1, "task": "chat"}),
    ("phi-3-mini-4k-instruct", 24, {"pattern": "standard"}),
    ("phi-3-mini-4k-instruct", 24, {"pattern": "maximum", "lora_r": 8}),
    ("phi-3-mini-4k-instruct", 8, {"task": "code"}),
    ("gemma-3-1b-it", 8, {"pattern": "minimal"}),
    ("gemma-3-1b-it", 16, {"task": "style", "per_device_train_batch_size": 8}),
    ("llama-3.2-1b", 12, {"pattern": "maximum", "num_processes": 2}),
    ("llama-3.2-1b", None, {"target_modules": ["q_proj", "v_proj"], "lora_alpha": 8}),
]


def _wizard(model: str, vram_gb: float | None, intent: dict[str, Any], root: Path) -> dict[str, Any]:
    state = WizardState(runs_root=root)
    state.set_inputs(hardware=SimpleNamespace(usable_vram_bytes=int(vram_gb * 1e9) if vram_gb else None))
    state.set_inputs(data_report=inspect_for_model(SAMPLE_DATA_PATH, model, max_seq_length=1024))
    state.set_inputs(inventory=load_inventory(model))
    if model != "demo":
        state.update(model=model)
    for name, value in intent.items():
        if name == "pattern":
            state.choose_pattern(value)
        else:
            state.update(**{name: value})
    return {"plan": state.plan.to_dict(), "sources": state.sources, "reasons": state.reasons,
            "target_pattern": state.target_pattern}


def _cli(model: str, vram_gb: float | None, intent: dict[str, Any], capsys: pytest.CaptureFixture[str]
         ) -> dict[str, Any]:
    argv = ["train", "--dry-run", "--json"]
    argv += ["--model", model] if model != "demo" else []
    argv += ["--vram-gb", str(vram_gb)] if vram_gb else []
    for name, value in intent.items():
        argv += ["--target-modules", value] if name == "pattern" else [flag_for(name), fmt_value(value)]
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Hardware detection sees no GPU; runs go under tmp_path."""
    from lora_tui.core.hardware import detect

    monkeypatch.setattr(detect, "detect_hardware", lambda: SimpleNamespace(usable_vram_bytes=None))
    monkeypatch.setenv("LORA_TUI_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "runs"


@pytest.mark.parametrize(("model", "vram_gb", "intent"), INTENTS)
def test_wizard_and_cli_resolve_the_same_plan(model: str, vram_gb: float | None, intent: dict[str, Any],
                                              no_gpu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wizard = _wizard(model, vram_gb, intent, no_gpu)
    cli = _cli(model, vram_gb, intent, capsys)
    assert wizard["plan"] == cli["plan"]
    assert wizard["sources"] == cli["sources"]
    assert wizard["reasons"] == cli["reasons"]
    assert wizard["target_pattern"] == cli["target_pattern"]


def test_phi3_standard_pattern_is_its_fused_modules(no_gpu: Path) -> None:
    wizard = _wizard("phi-3-mini-4k-instruct", 24, {"pattern": "standard"}, no_gpu)
    assert wizard["plan"]["target_modules"] == ["qkv_proj", "o_proj"]
    assert wizard["sources"]["target_modules"] == "given"
    assert "mapped to this model's modules (qkv_proj, o_proj)" in wizard["reasons"]["target_modules"]
    assert wizard["target_pattern"] == "standard"


def test_a_given_rank_keeps_the_alpha_ratio_and_says_so(no_gpu: Path) -> None:
    wizard = _wizard("demo", 24, {"lora_r": 32}, no_gpu)
    assert wizard["plan"]["lora_alpha"] == 64
    assert wizard["reasons"]["lora_alpha"] == "alpha = 2 x the given r 32 = 64 (the recommended alpha/r ratio kept)"


def test_a_given_batch_keeps_the_effective_batch(no_gpu: Path) -> None:
    wizard = _wizard("demo", 24, {"per_device_train_batch_size": 4}, no_gpu)
    assert wizard["plan"]["per_device_train_batch_size"] * wizard["plan"]["gradient_accumulation_steps"] == 16
    assert wizard["sources"]["gradient_accumulation_steps"] == "recommended"


def test_processes_divide_the_accumulation(no_gpu: Path) -> None:
    wizard = _wizard("demo", None, {"num_processes": 2}, no_gpu)
    assert wizard["plan"]["gradient_accumulation_steps"] == 4
    assert wizard["sources"]["gradient_accumulation_steps"] == "recommended (/2 processes)"


def test_an_invalid_edit_leaves_the_state_as_it_was(tmp_path: Path) -> None:
    from lora_tui.errors import UserError

    state = WizardState(runs_root=tmp_path)
    before = state.plan
    with pytest.raises(UserError, match=r"`lora_r` \(--lora-r\)"):
        state.update(lora_r=0)
    assert state.plan == before and "lora_r" not in state.given


def test_forget_brings_the_recommendation_back(tmp_path: Path) -> None:
    state = WizardState(runs_root=tmp_path)
    recommended = state.plan.lora_r
    state.update(lora_r=recommended * 4)
    assert state.sources["lora_r"] == "given"
    state.forget("lora_r")
    assert state.plan.lora_r == recommended and state.sources["lora_r"] == "recommended"
