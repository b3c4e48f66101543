"""core.resolve's derived rules on their own: the evaluation split, the save interval, the rank bound."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lora_tui.core.models.modules import load_inventory
from lora_tui.core.resolve import EVALUATIONS, PlanInputs, resolve, total_steps
from lora_tui.errors import UserError


def _inputs(examples: int, tmp_path: Path, **kw: object) -> PlanInputs:
    report = SimpleNamespace(examples=examples, token_stats=None)
    return PlanInputs(data_report=report, runs_root=tmp_path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("examples", "held"), [(99, 0), (100, 16), (360, 18), (5000, 250), (50_000, 500)])
def test_evaluation_split_is_about_5_percent_within_bounds(examples: int, held: int, tmp_path: Path) -> None:
    resolved = resolve({}, _inputs(examples, tmp_path))
    split = resolved.plan.eval_split
    assert round(split * examples) == held
    assert resolved.sources["eval_split"] == "recommended"
    reason = resolved.reasons["eval_split"]
    assert ("fewer than 100" in reason) if held == 0 else (f"{held} of {examples} examples" in reason)


def test_a_given_split_wins_and_zero_turns_evaluation_off(tmp_path: Path) -> None:
    resolved = resolve({"eval_split": 0.0}, _inputs(5000, tmp_path))
    assert resolved.plan.eval_split == 0 and resolved.sources["eval_split"] == "given"


def test_save_interval_makes_about_ten_checkpoints(tmp_path: Path) -> None:
    resolved = resolve({}, _inputs(5000, tmp_path))
    plan = resolved.plan
    steps = total_steps(5000, per_device_train_batch_size=plan.per_device_train_batch_size,
                        gradient_accumulation_steps=plan.gradient_accumulation_steps, num_processes=1,
                        num_train_epochs=plan.num_train_epochs, max_steps=-1, eval_split=plan.eval_split)
    assert steps == 3 * -(-(5000 - 250) // 16)  # 3 epochs of ceil(4750 / 16) steps
    assert plan.save_steps == steps // EVALUATIONS
    assert resolved.sources["save_steps"] == "recommended"
    assert f"{steps} optimizer steps / {EVALUATIONS}" in resolved.reasons["save_steps"]


def test_a_short_run_still_saves_and_a_given_interval_is_kept(tmp_path: Path) -> None:
    assert resolve({"max_steps": 5}, _inputs(40, tmp_path)).plan.save_steps == 1
    resolved = resolve({"save_steps": 7}, _inputs(5000, tmp_path))
    assert resolved.plan.save_steps == 7 and resolved.sources["save_steps"] == "given"


def test_rank_above_the_narrowest_targeted_layer_is_refused(tmp_path: Path) -> None:
    inputs = _inputs(360, tmp_path, inventory=load_inventory("demo"))
    assert resolve({"lora_r": 64}, inputs).plan.lora_r == 64
    with pytest.raises(UserError, match=r"`lora_r` \(--lora-r\) 65 is larger than the narrowest targeted layer "
                                        r"\(k_proj, 256 -> 64\); use at most 64"):
        resolve({"lora_r": 65}, inputs)


def test_small_data_keeps_its_rate_unless_the_person_set_one(tmp_path: Path) -> None:
    resolved = resolve({"task": "code"}, _inputs(200, tmp_path))
    assert resolved.plan.learning_rate == 1e-4 and resolved.sources["learning_rate"] == "recommended"
    assert resolved.reasons["learning_rate"].startswith("the guide's data-size table, row '< 1K examples'")
    given = resolve({"task": "code", "learning_rate": 3e-5}, _inputs(200, tmp_path))
    assert given.plan.learning_rate == 3e-5 and given.sources["learning_rate"] == "given"


@pytest.mark.parametrize("layer", ["given", "config"])
def test_the_advice_style_reaches_the_recommendation_and_is_recorded(layer: str, tmp_path: Path) -> None:
    values = {"advice": "practice", "task": "chat"}
    resolved = (resolve(values, _inputs(5000, tmp_path)) if layer == "given" else
                resolve({}, _inputs(5000, tmp_path), config=values))
    plan = resolved.plan
    assert plan.advice == "practice" and resolved.sources["advice"] == layer
    assert plan.learning_rate == 2e-4 and plan.num_train_epochs == 2
    assert plan.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert "the guide says 5e-5" in resolved.reasons["learning_rate"]
    assert 'advice = "practice"' in plan.to_toml(resolved.sources)
    assert "--advice practice" in plan.command_line()
    default = resolve({"task": "chat"}, _inputs(5000, tmp_path))
    assert default.plan.advice == "guide" and default.sources["advice"] == "default"
    assert default.plan.learning_rate == 5e-5


def test_an_unknown_advice_is_refused_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--advice gut: unknown; choose one of guide, practice"):
        resolve({"advice": "gut"}, _inputs(5000, tmp_path))


def test_accumulation_is_divided_by_machines_times_processes_with_the_reason(tmp_path: Path) -> None:
    one = resolve({"task": "chat"}, _inputs(5000, tmp_path)).plan
    resolved = resolve({"task": "chat", "nnodes": 2, "num_processes": 2, "master_addr": "10.0.0.1"},
                       _inputs(5000, tmp_path))
    plan = resolved.plan
    assert plan.world_size == 4 and plan.gradient_accumulation_steps * 4 == one.gradient_accumulation_steps
    assert plan.effective_batch_size == one.effective_batch_size
    reason = resolved.reasons["gradient_accumulation_steps"]
    assert reason.startswith(f"{one.gradient_accumulation_steps} / 4 processes (2 machines x 2) = "
                             f"{plan.gradient_accumulation_steps}, so the effective batch stays")
    given = resolve({"task": "chat", "nnodes": 2, "master_addr": "h", "gradient_accumulation_steps": 6},
                    _inputs(5000, tmp_path))
    assert given.plan.gradient_accumulation_steps == 6 and given.plan.effective_batch_size == 6 * 2 * 2
