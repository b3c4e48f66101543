"""Rule 7 of core.resolve: how examples become batches, chosen for the machine unless the person chose."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.core import resolve as resolve_mod
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.resolve import PlanInputs, resolve
from lora_tui.errors import UserError

GPU = 24 * 10**9


def test_cpu_runs_group_by_length(tmp_path: Path) -> None:
    resolved = resolve({}, PlanInputs(runs_root=tmp_path))
    assert resolved.plan.batching == "grouped" and resolved.sources["batching"] == "recommended"
    assert "padding-free is picked only with a GPU with FlashAttention" in resolved.reasons["batching"]


@pytest.mark.parametrize(("flash", "expected"), [(True, "padding-free"), (False, "grouped")])
def test_a_gpu_goes_padding_free_only_with_flash_attention(flash: bool, expected: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_mod, "flash_attention_installed", lambda: flash)
    resolved = resolve({}, PlanInputs(vram_bytes=GPU, runs_root=tmp_path))
    assert resolved.plan.batching == expected
    assert ("FlashAttention is installed" in resolved.reasons["batching"]) is flash
    assert ("pip install flash-attn" in resolved.reasons["batching"]) is not flash


@pytest.mark.parametrize("layer", ["given", "config"])
def test_a_chosen_batching_is_kept(layer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_mod, "flash_attention_installed", lambda: True)
    values = {"batching": "random"}
    resolved = resolve(values if layer == "given" else {}, PlanInputs(vram_bytes=GPU, runs_root=tmp_path),
                       config=values if layer == "config" else None)
    assert resolved.plan.batching == "random" and resolved.sources["batching"] == layer
    assert "batching" not in resolved.reasons


def test_an_unknown_batching_is_refused_naming_the_choices() -> None:
    with pytest.raises(UserError, match=r"batching.*must be one of grouped, random, padding-free, packed"):
        TrainingPlan(batching="sorted")


def test_padding_free_without_flash_attention_says_what_its_mask_costs(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    given = {"batching": "padding-free", "per_device_train_batch_size": 16, "max_seq_length": 4096}
    cpu = resolve(given, PlanInputs(runs_root=tmp_path))
    assert cpu.plan.batching == "padding-free" and cpu.sources["batching"] == "given"  # kept: it trains correctly
    assert cpu.reasons["batching"].startswith(
        "padding-free as set: without FlashAttention each batch is one row of up to 65,536 tokens that attention "
        "covers whole, under a block mask of up to 4.00 GiB")
    monkeypatch.setattr(resolve_mod, "flash_attention_installed", lambda: True)
    assert "batching" not in resolve(given, PlanInputs(vram_bytes=GPU, runs_root=tmp_path)).reasons
