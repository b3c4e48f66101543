"""Recommendation rules, table-driven over task x data size x VRAM (x model) for both advice styles: the exact
values, the source kind of each, the small-data rule, the r-with-model rule."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from lora_tui.core.memory import plan_estimate
from lora_tui.core.models.modules import LinearKind, ModelInventory, load_inventory
from lora_tui.core.plan import TrainingPlan, fmt_value
from lora_tui.core.recommend import SETTINGS, recommend
from lora_tui.core.sources import ADVICE, Citation
from lora_tui.core.sources import SourceKind as K
from lora_tui.core.tables import guide, resource_tier, size_tier
from lora_tui.core.targets import map_targets
from lora_tui.core.units import fmt_gib
from lora_tui.errors import UserError

GB = 10**9
STD = ["q_proj", "k_proj", "v_proj", "o_proj"]
MAX = [*STD, "gate_proj", "up_proj", "down_proj"]


# ---- the guide's numbers, written out here independently of guide.toml ------------------------------------
TASK = {"chat": (16, 0.05, 5e-5), "domain": (32, 0.1, 3e-5), "code": (24, 0.05, 2e-5), "style": (8, 0.05, 1e-4)}
"""The guide's task command lines: r, dropout, learning rate."""
SIZE = {"small": (8, 0.1, 1e-4), "medium": (16, 0.05, 5e-5), "large": (32, 0.05, 2e-5)}
"""The guide's data-size table: r, dropout, learning rate."""
RESOURCE = {"low": (4, 1, 16), "standard": (16, 2, 8), "high": (32, 4, 4)}
"""The guide's resource rows: r, batch, accumulation."""
GUIDE_EPOCHS = {"chat": 3.0, "code": 5.0}
"""The task's worked example's --epochs (example 1: dialogue, example 2: code); others: lora-tui's own 3."""
PRACTICE_LR = {(4, False): 3e-4, (8, False): 3e-4, (16, False): 2e-4, (24, False): 2e-4, (32, False): 1e-4,
               (4, True): 3e-4, (8, True): 2e-4, (16, True): 1e-4, (24, True): 1e-4, (32, True): 1e-4}
"""2e-4 x sqrt(16 / r) (x 0.7 above 10K examples), one digit, within 1e-4..3e-4: keyed by (r, large data)."""
PRACTICE_EPOCHS = {None: 3.0, "small": 3.0, "medium": 2.0, "large": 1.0}

TASKS = [None, "chat", "domain", "code", "style"]
EXAMPLES = [None, 200, 5000, 50_000]
VRAMS = [None, 6 * GB, 12 * GB, 24 * GB]


def _tier(examples: int | None) -> str | None:
    return None if examples is None else "small" if examples < 1000 else "medium" if examples <= 10_000 else "large"


def _res(vram: int | None) -> str | None:
    return None if vram is None else "low" if vram < 7.5 * GB else "standard" if vram < 17.5 * GB else "high"


def expected(task: str | None, examples: int | None, vram: int | None, advice: str) -> dict[str, Any]:
    """The values the rules give without a model, from the numbers above."""
    size, res = _tier(examples), _res(vram)
    r, dropout, lr = TASK[task] if task else SIZE[size] if size else (16, 0.05, 5e-5)
    if task and size == "small":  # small data keeps its row: r capped, dropout raised, its learning rate
        r, dropout, lr = min(r, 8), max(dropout, 0.1), 1e-4
    batch, accum = 2, 8
    if res:
        cap, batch, accum = RESOURCE[res]
        r = min(r, cap)
    if advice == "practice":
        lr = PRACTICE_LR[(r, size == "large")]
        epochs = PRACTICE_EPOCHS[size]
        targets = MAX
    else:
        epochs = GUIDE_EPOCHS.get(task or "", 3.0)
        targets = STD if task in (None, "chat") else MAX
    return dict(lora_r=r, lora_alpha=2 * r, lora_dropout=dropout, learning_rate=lr, num_train_epochs=epochs,
                per_device_train_batch_size=batch, gradient_accumulation_steps=accum, target_modules=targets,
                warmup_ratio=0.1, weight_decay=0.0, max_seq_length=1024, gradient_checkpointing=vram is not None,
                load_in_4bit=False)


def expected_kinds(task: str | None, examples: int | None, vram: int | None, advice: str) -> dict[str, K]:
    """The source kind of each value without a model."""
    known = task is not None or examples is not None
    table_or_script = K.GUIDE_TABLE if known else K.GUIDE_SCRIPT
    capped = vram is not None and expected(task, examples, None, advice)["lora_r"] > RESOURCE[_res(vram)][0]
    practice = advice == "practice"
    return dict(
        lora_r=K.GUIDE_TABLE if known or capped else K.GUIDE_SCRIPT, lora_alpha=K.GUIDE_TABLE,
        lora_dropout=table_or_script, learning_rate=K.PRACTICE if practice else table_or_script,
        num_train_epochs=K.PRACTICE if practice else K.GUIDE_EXAMPLE if task in GUIDE_EPOCHS else K.LORA_TUI,
        target_modules=K.PRACTICE if practice else K.LORA_TUI if task in ("domain", "code") else K.GUIDE_TABLE,
        per_device_train_batch_size=K.GUIDE_TABLE if vram else K.LORA_TUI,
        gradient_accumulation_steps=K.GUIDE_TABLE if vram else K.LORA_TUI,
        warmup_ratio=K.GUIDE_REMEDY, weight_decay=K.LORA_TUI, max_seq_length=K.LORA_TUI,
        gradient_checkpointing=K.LORA_TUI, eval_split=K.LORA_TUI, load_in_4bit=K.LORA_TUI)


CASES = list(itertools.product(TASKS, EXAMPLES, VRAMS, ADVICE))


@pytest.mark.parametrize(("task", "examples", "vram", "advice"), CASES)
def test_every_case_gives_the_tables_values_and_true_sources(task: str | None, examples: int | None,
                                                             vram: int | None, advice: str) -> None:
    rec = recommend(task=task, examples=examples, vram_bytes=vram, advice=advice)
    assert set(rec.values) == set(SETTINGS) == set(rec.reasons) == set(rec.citations)
    want = expected(task, examples, vram, advice)
    assert {k: rec.values[k] for k in want} == want
    kinds = {k: c.kind for k, c in rec.citations.items()}
    assert kinds == expected_kinds(task, examples, vram, advice)
    for key, cite in rec.citations.items():
        reason = rec.reasons[key]
        if cite.kind in (K.GUIDE_TABLE, K.GUIDE_EXAMPLE, K.GUIDE_SCRIPT, K.GUIDE_REMEDY) and key != "target_modules":
            assert reason.startswith("the guide's"), (key, reason)
        if cite.kind is K.LORA_TUI and key in ("num_train_epochs", "weight_decay", "max_seq_length",
                                               "per_device_train_batch_size"):
            assert reason.startswith("lora-tui's own default"), (key, reason)  # never cited as the guide's
        if cite.kind is K.PRACTICE:
            assert "common LoRA practice" in reason


@pytest.mark.parametrize(("task", "examples", "vram", "advice"), CASES)
def test_each_value_shows_the_other_styles_value_where_they_differ(task: str | None, examples: int | None,
                                                                   vram: int | None, advice: str) -> None:
    rec = recommend(task=task, examples=examples, vram_bytes=vram, advice=advice)
    other_advice = "guide" if advice == "practice" else "practice"
    mine, theirs = expected(task, examples, vram, advice), expected(task, examples, vram, other_advice)
    assert rec.other == {k: v for k, v in theirs.items() if v != mine[k]}
    said = "the guide says" if other_advice == "guide" else "common LoRA practice gives"
    for key in theirs:
        shown = f"; {said} {fmt_value(theirs[key])} ("
        assert (shown in rec.reasons[key]) == (key in rec.other), (key, rec.reasons[key])


def test_small_data_keeps_its_learning_rate_with_a_task() -> None:
    rec = recommend(task="code", examples=200)
    assert rec.values["learning_rate"] == 1e-4
    assert rec.citations["learning_rate"] == Citation(K.GUIDE_TABLE, "the guide's data-size table, row '< 1K examples'")
    assert rec.reasons["learning_rate"].startswith("the guide's data-size table, row '< 1K examples': "
                                                   "learning_rate = 1e-4: below 1K examples the small-data row's "
                                                   "rate applies (the guide's task table, row 'Code generation' "
                                                   "says 2e-5")
    assert "common LoRA practice gives 3e-4" in rec.reasons["learning_rate"]


def test_reasons_name_table_rows_and_conflicts() -> None:
    rec = recommend(task="chat", examples=300, vram_bytes=6 * GB)
    assert "the guide's resource table, row '< 8 GB VRAM' caps r at 4" in rec.reasons["lora_r"]
    agree = recommend(task="chat", examples=5000, vram_bytes=12 * GB)
    assert "agrees" in agree.reasons["lora_dropout"]
    assert "effective batch 16" in agree.reasons["per_device_train_batch_size"]
    code = recommend(task="code", examples=5000, vram_bytes=12 * GB)
    assert ("the guide's data-size table, row '1K-10K examples' says 5e-5; the task preset takes precedence"
            in code.reasons["learning_rate"])
    assert ("the guide's worked example (Practical examples, example 2: programming assistant) uses 3e-5 with "
            "batch 4: the preset is taken" in code.reasons["learning_rate"])
    assert code.reasons["num_train_epochs"].startswith(
        "the guide's worked example (Practical examples, example 2: programming assistant): --epochs 5")
    warm = agree.reasons["warmup_ratio"]
    assert "slow-convergence remedy: warmup_ratio 0.1, lowered from its script's 0.3; lora-tui takes 0.1" in warm


def test_unknown_advice_names_the_flag() -> None:
    with pytest.raises(UserError, match=r"--advice wild: unknown; choose one of guide, practice"):
        recommend(advice="wild")


# ---- the resource row's r with a model: the memory estimate decides ---------------------------------------

MODELS = ["smollm2-135m", "qwen2.5-1.5b", "llama-3.1-8b"]


@pytest.mark.parametrize(("model", "vram", "task", "advice"),
                         list(itertools.product(MODELS, [6 * GB, 12 * GB], ["domain", "code"], ADVICE)))
def test_with_a_model_the_resource_rows_r_is_advisory(model: str, vram: int, task: str, advice: str) -> None:
    inv = load_inventory(model)
    rec = recommend(task=task, examples=5000, vram_bytes=vram, inventory=inv, advice=advice)
    table_r, cap = TASK[task][0], RESOURCE[_res(vram)][0]
    reason = rec.reasons["lora_r"]
    if table_r <= cap:
        assert "caps r" not in reason
        return
    base = expected(task, 5000, vram, advice) | {"lora_r": table_r, "lora_alpha": 2 * table_r,
                                                 "gradient_checkpointing": True}
    at_r = plan_estimate(inv, TrainingPlan(**base), vram)
    at_cap = plan_estimate(inv, TrainingPlan(**(base | {"lora_r": cap, "lora_alpha": 2 * cap})), vram)
    assert f"caps r at {cap}; with gradient checkpointing, at r {table_r} this model needs " \
           f"{fmt_gib(at_r.total_bytes)} of {fmt_gib(vram)} ({vram / GB:g} GB)" in reason
    assert f"at r {cap} {fmt_gib(at_cap.total_bytes)}" in reason
    fit_changed_r = any("lora_r" in s.get("changes", {}) for s in rec.fit_steps)
    if at_r.verdict != "will_not_fit":
        assert f"so r {table_r} is kept" in reason
        assert rec.values["lora_r"] == table_r
    else:
        assert "so the cap applies" in reason
        assert fit_changed_r or rec.values["lora_r"] == cap


def test_r_is_kept_for_a_small_model_on_a_small_gpu() -> None:
    rec = recommend(task="domain", vram_bytes=6 * GB, inventory=load_inventory("smollm2-135m"))
    assert rec.values["lora_r"] == 32 and rec.values["lora_alpha"] == 64
    assert "so r 32 is kept (with a model the memory estimate decides)" in rec.reasons["lora_r"]
    without_model = recommend(task="domain", vram_bytes=6 * GB)
    assert without_model.values["lora_r"] == 4


def test_no_gpu_note_and_batch_from_defaults() -> None:
    rec = recommend(task="domain")
    assert rec.tiers == {"task": "domain", "data_size": None, "resource": None}
    assert rec.values["lora_r"] == 32
    assert any("No GPU VRAM known" in n for n in rec.notes)
    assert rec.reasons["gradient_accumulation_steps"].startswith("lora-tui's own default without a GPU")
    assert not any("--vram-gb" in n for n in rec.notes)  # the CLI names its flag; the TUI shows the same notes


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


@pytest.mark.parametrize("examples", [100, 101, 333, 360, 999, 1234, 5000, 9999, 10001, 123457])
def test_the_recommended_split_holds_out_exactly_the_count_its_reason_states(examples: int) -> None:
    import re

    from lora_tui.core.plan import held_out

    rec = recommend(examples=examples)
    stated = int(re.search(r"(\d+) of \d+ examples", rec.reasons["eval_split"]).group(1))
    assert stated == min(500, max(16, round(0.05 * examples)))
    assert held_out(examples, rec.values["eval_split"]) == stated
