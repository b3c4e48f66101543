"""TrainingPlan validation, run files and command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.core.plan import TrainingPlan, load_run_file, parse_target_modules
from lora_tui.core.tables import guide
from lora_tui.errors import UserError


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lora_r": 0}, r"`lora_r` \(--lora-r\) must be a positive integer, got 0"),
        ({"lora_r": -4}, r"`lora_r` \(--lora-r\)"),
        ({"lora_dropout": 1.0}, r"`lora_dropout` \(--lora-dropout\) must be in \[0, 1\), got 1.0"),
        ({"lora_dropout": -0.1}, r"`lora_dropout`"),
        ({"learning_rate": 0}, r"`learning_rate` \(--learning-rate\) must be > 0"),
        ({"num_train_epochs": 0}, r"`num_train_epochs` \(--epochs\)"),
        ({"per_device_train_batch_size": 0}, r"`per_device_train_batch_size` \(--batch-size\)"),
        ({"gradient_accumulation_steps": 0}, r"--gradient-accumulation-steps"),
        ({"warmup_ratio": 1.0}, r"`warmup_ratio`"),
        ({"eval_split": 0.9}, r"`eval_split`"),
        ({"max_steps": 0}, r"`max_steps`"),
        ({"precision": "fp8"}, r"`precision`"),
        ({"target_modules": []}, r"`target_modules`"),
        ({"target_modules": ["all-linear", "q_proj"]}, r"'all-linear' cannot be combined"),
        ({"lora_r": True}, r"`lora_r`"),
        ({"advice": "gut"}, r"`advice` \(--advice\) must be one of guide, practice, got 'gut'"),
    ],
)
def test_validation_names_the_field_and_flag(changes: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        TrainingPlan(**changes)


def test_defaults_match_the_guides_defaults_table() -> None:
    plan = TrainingPlan()
    for key, value in guide().defaults.settings.items():
        assert getattr(plan, key) == value, key


def test_scaling_and_effective_batch() -> None:
    plan = TrainingPlan(lora_r=16, lora_alpha=32, per_device_train_batch_size=2, gradient_accumulation_steps=8,
                        num_processes=2)
    assert plan.scaling == 2.0 and plan.effective_batch_size == 32
    assert TrainingPlan(lora_r=16, lora_alpha=32, use_rslora=True).scaling == 8.0


def test_run_file_round_trip(tmp_path: Path) -> None:
    plan = TrainingPlan(model="demo", data="d.jsonl", lora_r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                        learning_rate=1e-4, gradient_checkpointing=True, task="style")
    path = tmp_path / "run.toml"
    path.write_text(plan.to_toml({"lora_r": "given", "learning_rate": "recommended"}), encoding="utf-8")
    settings, sources = load_run_file(path)
    assert TrainingPlan.from_dict(settings) == plan
    assert sources == {"lora_r": "given", "learning_rate": "recommended"}


def test_run_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run file not found"):
        load_run_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[plan]\nlora_r = \n", encoding="utf-8")
    with pytest.raises(UserError, match="bad.toml: not valid TOML"):
        load_run_file(bad)
    with pytest.raises(UserError, match="x.toml: unknown setting\\(s\\) lora_rank"):
        TrainingPlan.from_dict({"lora_rank": 8}, where="x.toml")
    with pytest.raises(UserError, match="x.toml: `lora_r`"):
        TrainingPlan.from_dict({"lora_r": 0}, where="x.toml")


def test_command_line_uses_the_guides_flag_names() -> None:
    plan = TrainingPlan(model="google/gemma-3-1b-it", lora_r=32, lora_alpha=64, num_train_epochs=5,
                        per_device_train_batch_size=4, learning_rate=3e-5, gradient_checkpointing=False,
                        use_dora=True)
    line = plan.command_line(defaults=TrainingPlan())
    assert line == ("lora-tui train --model google/gemma-3-1b-it --lora-r 32 --lora-alpha 64 "
                    "--learning-rate 3e-5 --epochs 5 --batch-size 4 --use-dora --no-gradient-checkpointing")


def test_parse_target_modules() -> None:
    assert parse_target_modules("q_proj,v_proj q_proj") == ["q_proj", "v_proj"]
    assert parse_target_modules("all-linear") == ["all-linear"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e-4, "1e-4"), (5e-5, "5e-5"), (2.5e-5, "2.5e-5"), (3.0, "3"), (0.05, "0.05"), (True, "on"),
     (["q_proj", "v_proj"], "q_proj,v_proj"), (16, "16")],
)
def test_fmt_value(value: object, text: str) -> None:
    from lora_tui.core.plan import fmt_value

    assert fmt_value(value) == text


@pytest.mark.parametrize(("changes", "message"), [
    ({"keep": "worst"}, r"`keep` \(--keep\) must be one of best, last"),
    ({"early_stopping": -1}, r"`early_stopping` \(--early-stopping\) must be a whole number from 0"),
    ({"early_stopping": 3}, r"needs an evaluation split to watch \(--eval-split > 0\)"),
])
def test_keep_and_early_stopping_are_validated(changes: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        TrainingPlan(**changes)
    assert TrainingPlan(eval_split=0.1, early_stopping=3, keep="last").early_stopping == 3
