"""core.resolve's rule for `distributed` (core.memory_sharded.choose): fsdp only when DDP's per-GPU estimate does
not fit one GPU and FSDP's does, with both figures in the reason; ddp otherwise; a given value kept. And the
per-GPU estimate under FSDP that the rule and the dry run read."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui import i18n
from lora_tui.core.fit import total_text
from lora_tui.core.memory import OVERHEAD_FIXED, OVERHEAD_FRACTION, plan_estimate
from lora_tui.core.memory_sharded import per_gpu, sharded
from lora_tui.core.models.modules import load_inventory
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.resolve import PlanInputs, resolve
from lora_tui.core.units import fmt_gib
from tests.helpers.japanese import english_words

GB = 10**9


def _resolve(model: str, vram_gb: float | None, tmp_path: Path, **given: object):
    inputs = PlanInputs(vram_bytes=int(vram_gb * GB) if vram_gb else None, inventory=load_inventory(model),
                        runs_root=tmp_path)
    return resolve({"model": model, **given}, inputs)


def _figures(plan: TrainingPlan, vram_gb: float) -> tuple[str, str]:
    """DDP's and FSDP's per-GPU totals as the dry run computes them (launcher._memory: memory_sharded.per_gpu)."""
    inv = load_inventory(plan.model)
    est = plan_estimate(inv, TrainingPlan.from_dict({**plan.to_dict(), "distributed": "ddp"}), int(vram_gb * GB))
    fsdp = sharded(est, plan.world_size, inv.num_layers)
    assert per_gpu(est, plan.world_size, inv.num_layers)["fsdp_bytes"] == fsdp.total_bytes
    return total_text(est), total_text(fsdp)


def test_fsdp_when_ddp_does_not_fit_one_gpu_and_fsdp_does_saying_why_with_both_figures(tmp_path: Path) -> None:
    resolved = _resolve("qwen3-14b", 24, tmp_path, num_processes=2, load_in_4bit=False)
    plan = resolved.plan
    assert plan.distributed == "fsdp" and resolved.sources["distributed"] == "recommended"
    ddp, fsdp = _figures(plan, 24)
    assert float(ddp.split()[0]) > 22.35 > float(fsdp.split()[0])
    assert resolved.reasons["distributed"] == (
        f"fsdp: DDP needs {ddp} of 22.35 GiB on every GPU (the whole base on each) and will not fit; FSDP over 2 "
        f"processes shards the weights and LoRA state: {fsdp} per GPU")
    assert f"Memory: {resolved.reasons['distributed']}." in resolved.notes
    nodes = _resolve("qwen3-14b", 24, tmp_path, nnodes=2, master_addr="10.0.0.1", load_in_4bit=False)
    assert nodes.plan.distributed == "fsdp" and "FSDP over 2 processes" in nodes.reasons["distributed"]


def test_ddp_when_it_fits_with_the_figures(tmp_path: Path) -> None:
    resolved = _resolve("qwen3-8b", 24, tmp_path, num_processes=2)
    assert resolved.plan.distributed == "ddp" and resolved.sources["distributed"] == "recommended"
    ddp, fsdp = _figures(resolved.plan, 24)
    assert resolved.reasons["distributed"] == (
        f"ddp: DDP fits one GPU ({ddp} of 22.35 GiB, the whole base on every GPU); FSDP over 2 processes ({fsdp} "
        "per GPU) is chosen only when DDP does not fit")
    assert not any(note.startswith("Memory: fsdp") for note in resolved.notes)


def test_16_bit_fsdp_instead_of_the_recommendations_4_bit_ddp(tmp_path: Path) -> None:
    one = _resolve("qwen3-14b", 24, tmp_path)
    assert one.plan.load_in_4bit and one.fit_steps[-1]["kind"] == "four_bit"  # one GPU: QLoRA is the way out
    two = _resolve("qwen3-14b", 24, tmp_path, num_processes=2)
    assert two.plan.distributed == "fsdp" and not two.plan.load_in_4bit
    ddp, fsdp = _figures(two.plan, 24)
    assert two.reasons["distributed"].startswith(f"fsdp: in 16-bit, DDP needs {ddp} of 22.35 GiB on every GPU and "
                                                 f"will not fit; FSDP over 2 processes needs {fsdp} per GPU")
    assert two.reasons["load_in_4bit"].startswith("off: FSDP over 2 processes fits the 16-bit base")
    assert two.fit_steps == []  # one GPU's 16-bit dead end and its 4-bit way out are not this run's
    # gradient checkpointing stays on, its figures what one GPU holds under FSDP (the one-GPU ones were DDP's)
    assert two.plan.gradient_checkpointing
    assert two.reasons["gradient_checkpointing"].startswith(
        "on: under FSDP over 2 processes one GPU would hold ")
    assert two.reasons["gradient_checkpointing"].endswith(f"; with it {fsdp.split(' (')[0]} (activations shrink to "
                                                          "the layer inputs for about 30% more time)")
    assert one.reasons["gradient_checkpointing"].startswith("on: without it the estimate is ")


def test_fsdp_with_the_guides_remedies_when_it_needs_them_and_never_over_a_given_value(tmp_path: Path) -> None:
    resolved = _resolve("qwen3-32b", 24, tmp_path, num_processes=4)
    plan = resolved.plan
    assert plan.distributed == "fsdp" and plan.per_device_train_batch_size < 4
    assert resolved.reasons["per_device_train_batch_size"].startswith(
        "the guide's out-of-memory remedy that FSDP over 4 processes needs to fit one GPU: --batch-size 4 -> ")
    assert plan.effective_batch_size == 16
    kept = _resolve("qwen3-32b", 24, tmp_path, num_processes=4, per_device_train_batch_size=4)
    assert kept.plan.per_device_train_batch_size == 4 and kept.plan.distributed == "ddp"
    assert kept.reasons["distributed"].startswith("ddp: neither fits one GPU of 22.35 GiB")


def test_a_given_strategy_is_kept_and_a_ddp_that_does_not_fit_says_so(tmp_path: Path) -> None:
    given = _resolve("qwen3-14b", 24, tmp_path, num_processes=2, load_in_4bit=False, distributed="ddp")
    assert given.plan.distributed == "ddp" and given.sources["distributed"] == "given"
    ddp, fsdp = _figures(given.plan, 24)
    warning = (f"ddp as you set it, but DDP needs {ddp} of 22.35 GiB on every GPU and will not fit, while FSDP over 2 "
               f"processes needs {fsdp}: --distributed fsdp")
    assert given.reasons["distributed"] == warning and warning in given.notes
    fsdp_given = _resolve("qwen3-8b", 24, tmp_path, num_processes=2, distributed="fsdp")
    assert fsdp_given.plan.distributed == "fsdp" and "distributed" not in fsdp_given.reasons
    config = resolve({"model": "qwen3-8b"}, PlanInputs(vram_bytes=24 * GB, inventory=load_inventory("qwen3-8b"),
                                                       runs_root=tmp_path),
                     config={"num_processes": 2, "distributed": "fsdp"})
    assert config.plan.distributed == "fsdp" and config.sources["distributed"] == "config"


@pytest.mark.parametrize(("given", "vram_gb", "reason"), [
    ({}, 24, "ddp: one process, nothing to shard"),
    ({"num_processes": 2}, None, "ddp: no GPU here, and fsdp shards a model only across CUDA GPUs"),
])
def test_nothing_to_shard_or_no_gpu_is_ddp(given: dict[str, object], vram_gb: float | None, reason: str,
                                           tmp_path: Path) -> None:
    resolved = _resolve("qwen3-14b", vram_gb, tmp_path, load_in_4bit=False, **given)
    assert resolved.plan.distributed == "ddp" and resolved.sources["distributed"] == "default"
    assert resolved.reasons["distributed"] == reason


def test_fsdp_divides_weights_and_lora_state_and_charges_two_gathered_layers() -> None:
    inv = load_inventory("qwen3-14b")
    est = plan_estimate(inv, TrainingPlan(model="qwen3-14b"), 24 * GB)
    four = sharded(est, 4, inv.num_layers)
    assert four.part("weights").bytes == est.part("weights").bytes // 4
    assert four.part("trainable").bytes == est.part("trainable").bytes // 4
    assert four.part("activations").bytes == est.part("activations").bytes
    assert four.part("gathered").bytes == est.part("weights").bytes * 2 // inv.num_layers
    rest = sum(p.bytes for p in four.parts if p.key != "overhead")
    assert four.part("overhead").bytes == int(OVERHEAD_FIXED + OVERHEAD_FRACTION * rest)  # of what one GPU holds
    assert four.part("overhead").detail == f"0.75 GiB + 8% x {fmt_gib(rest)}"
    assert four.total_bytes == rest + four.part("overhead").bytes < est.total_bytes
    assert sharded(est, 1, inv.num_layers) is est


def test_the_reasons_are_japanese_in_japanese(tmp_path: Path) -> None:
    i18n.set_language("ja")
    try:
        fsdp = _resolve("qwen3-14b", 24, tmp_path, num_processes=2)
        ddp = _resolve("qwen3-8b", 24, tmp_path, nnodes=2, master_addr="h")
    finally:
        i18n.set_language("en")
    for text in (fsdp.reasons["distributed"], fsdp.reasons["load_in_4bit"], ddp.reasons["distributed"],
                 ddp.reasons["gradient_accumulation_steps"]):
        assert english_words(text) == [], text
    assert ddp.sources["gradient_accumulation_steps"] == "recommended (/2 processes (2 machines x 1))"


def test_the_fit_loop_keeps_the_effective_batch_over_machines() -> None:
    from lora_tui.core.fit import fit_to_vram

    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    plan = TrainingPlan(model="qwen2.5-0.5b", nnodes=2, master_addr="h", per_device_train_batch_size=8,
                        gradient_accumulation_steps=1, max_seq_length=2048, lora_r=256, lora_alpha=512,
                        target_modules=modules, gradient_checkpointing=False)
    steps = fit_to_vram(load_inventory("qwen2.5-0.5b"), plan, 3 * GB)
    batch = [step.changes for step in steps if "per_device_train_batch_size" in step.changes]
    assert batch == [{"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}]  # 2 x 4 x 2 machines = 16
