"""Recommendation rules, table-driven against the guide's tables."""

from __future__ import annotations

import pytest

from lora_tui.core.models.modules import LinearKind, ModelInventory
from lora_tui.core.recommend import SETTINGS, recommend
from lora_tui.core.tables import guide, resource_tier, size_tier
from lora_tui.core.targets import map_targets
from lora_tui.errors import UserError

GB = 10**9
STD = ["q_proj", "k_proj", "v_proj", "o_proj"]
MAX = [*STD, "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize(
    ("task", "examples", "vram", "expected"),
    [
        # every table agrees: used exactly
        ("chat", 5000, 12 * GB, dict(lora_r=16, lora_alpha=32, lora_dropout=0.05, learning_rate=5e-5,
                                     per_device_train_batch_size=2, gradient_accumulation_steps=8,
                                     num_train_epochs=3.0, target_modules=STD)),
        ("domain", 20000, 24 * GB, dict(lora_r=32, lora_alpha=64, lora_dropout=0.1, learning_rate=3e-5,
                                        per_device_train_batch_size=4, gradient_accumulation_steps=4,
                                        target_modules=MAX)),
        ("code", 5000, 40 * GB, dict(lora_r=24, lora_alpha=48, lora_dropout=0.05, learning_rate=2e-5,
                                     num_train_epochs=5.0, per_device_train_batch_size=4)),
        # resource tier caps r; small data raises dropout
        ("style", 500, 6 * GB, dict(lora_r=4, lora_alpha=8, lora_dropout=0.1, learning_rate=1e-4,
                                    per_device_train_batch_size=1, gradient_accumulation_steps=16)),
        ("domain", 5000, 12 * GB, dict(lora_r=16, lora_alpha=32, lora_dropout=0.1, learning_rate=3e-5)),
        # small data caps the task's r, the task keeps its learning rate
        ("chat", 300, 12 * GB, dict(lora_r=8, lora_alpha=16, lora_dropout=0.1, learning_rate=5e-5)),
        # no task: the data-size table decides
        (None, 300, None, dict(lora_r=8, lora_alpha=16, lora_dropout=0.1, learning_rate=1e-4,
                               per_device_train_batch_size=2, gradient_accumulation_steps=8)),
        (None, 50000, 80 * GB, dict(lora_r=32, lora_alpha=64, lora_dropout=0.05, learning_rate=2e-5)),
        (None, 50000, 12 * GB, dict(lora_r=16, lora_alpha=32, learning_rate=2e-5)),
        # nothing known: the defaults row
        (None, None, None, dict(lora_r=16, lora_alpha=32, lora_dropout=0.05, learning_rate=5e-5,
                                num_train_epochs=3.0, warmup_ratio=0.1, weight_decay=0.0, max_seq_length=1024,
                                gradient_checkpointing=False, target_modules=STD)),
        ("chat", None, 12 * GB, dict(gradient_checkpointing=True)),
    ],
)
def test_rules(task: str | None, examples: int | None, vram: int | None, expected: dict) -> None:
    rec = recommend(task=task, examples=examples, vram_bytes=vram)
    assert set(rec.values) == set(SETTINGS) == set(rec.reasons)
    assert {k: rec.values[k] for k in expected} == expected


@pytest.mark.parametrize("vram", [5 * GB, 12 * GB, 24 * GB])
def test_effective_batch_is_16_in_every_resource_tier(vram: int) -> None:
    v = recommend(task="chat", examples=5000, vram_bytes=vram).values
    assert v["per_device_train_batch_size"] * v["gradient_accumulation_steps"] == 16


def test_reasons_name_table_rows_and_conflicts() -> None:
    rec = recommend(task="chat", examples=300, vram_bytes=6 * GB)
    assert "resource table, row '< 8 GB VRAM'" in rec.reasons["lora_r"]
    assert "caps r at 4" in rec.reasons["lora_r"]
    assert "task table, row 'Dialogue / chatbot'" in rec.reasons["learning_rate"]
    assert "data-size table, row '< 1K examples' says 1e-4" in rec.reasons["learning_rate"]
    assert "task preset takes precedence" in rec.reasons["learning_rate"]
    agree = recommend(task="chat", examples=5000, vram_bytes=12 * GB)
    assert "agrees" in agree.reasons["lora_dropout"]
    assert "effective batch 16" in agree.reasons["per_device_train_batch_size"]


def test_no_gpu_note_and_batch_from_defaults() -> None:
    rec = recommend(task="domain")
    assert rec.tiers == {"task": "domain", "data_size": None, "resource": None}
    assert rec.values["lora_r"] == 32
    assert any("No GPU VRAM known" in n for n in rec.notes)
    assert "resource table does not apply" in rec.reasons["gradient_accumulation_steps"]


@pytest.mark.parametrize(("style", "alpha"), [("conservative", 16), ("standard", 32), ("aggressive", 64)])
def test_alpha_styles(style: str, alpha: int) -> None:
    assert recommend(task="chat", style=style).values["lora_alpha"] == alpha


@pytest.mark.parametrize(
    ("examples", "tier"), [(0, "small"), (999, "small"), (1000, "medium"), (10000, "medium"), (10001, "large")]
)
def test_size_tiers(examples: int, tier: str) -> None:
    assert size_tier(examples) == tier


@pytest.mark.parametrize(
    ("vram", "tier"),
    [
        (6_442_450_944, "low"),  # a 6 GB card
        (8_589_934_592, "standard"),  # RTX 3070 "8 GB"
        (15_828_320_256, "standard"),  # T4 "16 GB"
        (17_175_674_880, "standard"),  # RTX 4060 Ti "16 GB"
        (23_836_033_024, "high"),  # A10 "24 GB"
        (85_899_345_920, "high"),
        (None, None),
    ],
)
def test_resource_tiers(vram: int | None, tier: str | None) -> None:
    assert resource_tier(vram) == tier


def test_errors_name_the_flag() -> None:
    with pytest.raises(UserError, match="--task poetry"):
        recommend(task="poetry")
    with pytest.raises(UserError, match="--style"):
        recommend(style="wild")
    with pytest.raises(UserError, match="--examples"):
        recommend(examples=-1)


def _inv(names: list[tuple[str, str]]) -> ModelInventory:
    kinds = tuple(LinearKind(n, 64, 64, 2, group=g) for n, g in names)
    return ModelInventory("x", "phi3", 2, 64, 100, 4, 4, 16, 128, 10_000, kinds)


def test_targets_map_to_fused_modules() -> None:
    phi = _inv([("qkv_proj", "attention"), ("o_proj", "attention"), ("gate_up_proj", "mlp"),
                ("down_proj", "mlp"), ("lm_head", "output")])
    mapped, note = map_targets(MAX, phi)
    assert mapped == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    assert "mapped" in note
    assert recommend(task="style", inventory=phi).values["target_modules"] == mapped


def test_guide_tables_cover_the_guide() -> None:
    g = guide()
    assert set(g.tasks) == {"chat", "domain", "code", "style"}
    assert [p.modules for p in g.patterns.values()] == [("q_proj", "v_proj"), tuple(STD), tuple(MAX)]
    assert [s.ratio for s in g.alpha_styles] == [1.0, 2.0, 4.0]
    assert set(g.troubles) == {"loss_not_falling", "overfitting", "oom", "slow_convergence"}
    for row in g.resources:
        assert row.settings["per_device_train_batch_size"] * row.settings["gradient_accumulation_steps"] == 16
        assert row.settings["lora_alpha"] == 2 * row.settings["lora_r"]


def test_model_preset_settings_override_with_reason() -> None:
    inv = _inv([("q_proj", "attention"), ("v_proj", "attention")])
    inv.extra["recommend"] = {"learning_rate": {"value": 1e-3, "why": "a tiny model needs larger steps"}}
    rec = recommend(task="chat", inventory=inv)
    assert rec.values["learning_rate"] == 1e-3
    assert rec.reasons["learning_rate"].startswith("model preset 'x': learning_rate = 0.001: a tiny model")
    assert "the guide's tables said 5e-5" in rec.reasons["learning_rate"]
