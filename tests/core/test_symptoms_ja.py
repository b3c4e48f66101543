"""The troubleshooting symptoms in Japanese: titles, evidence, remedies and their sources from the catalogue, no
English left but names and flags; whether a remedy is beyond the guide does not depend on the language."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest

from lora_tui import i18n
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.runs import RunStatus
from lora_tui.core.symptoms import diagnose, is_beyond_the_guide, remedies, remedy_reason, symptom_dict
from tests.core.test_symptoms import _stream, healthy
from tests.helpers.japanese import english_words


@pytest.fixture(autouse=True)
def _catalogue() -> Iterator[None]:
    i18n.missing.clear()
    yield
    assert i18n.missing == set()  # every message asked for is in the catalogue


def _streams() -> dict[str, tuple[list, RunStatus | None, TrainingPlan]]:
    """A metrics stream (with its status and plan) raising each symptom."""
    rng = random.Random(4)
    flat = [2.3 * (1 + rng.gauss(0, 0.02)) for _ in range(100)]
    rng = random.Random(5)
    climbing = [v * (1 + rng.gauss(0, 0.02)) for v in [2.2 - 0.6 * i / 40 for i in range(40)]
                + [1.6 + 6.4 * i / 40 for i in range(40)]]
    rng = random.Random(6)
    slow = [(2.0 - 0.0035 * i) * (1 + rng.gauss(0, 0.005)) for i in range(50)]
    return {
        "loss_not_falling": (_stream(flat), RunStatus(state="running", max_steps=100), TrainingPlan()),
        "diverging": (_stream(climbing), RunStatus(state="running", max_steps=200), TrainingPlan()),
        "spike": (_stream(healthy(100, noise=0.01), grad_norms=[0.8] * 90 + [40.0] * 10),
                  RunStatus(state="running", max_steps=100), TrainingPlan()),
        "non_finite": (_stream(healthy(50, noise=0.01) + [math.nan]), None, TrainingPlan(precision="fp16")),
        "overfitting": (_stream([2.5 - 0.02 * i for i in range(80)], {10: 2.1, 20: 1.9, 30: 2.0, 40: 2.2}), None,
                        TrainingPlan()),
        "memorising": (_stream([2.0 * 0.85**i for i in range(60)]), RunStatus(state="running", max_steps=60),
                       TrainingPlan()),
        "slow_convergence": (_stream(slow), RunStatus(state="running", max_steps=100), TrainingPlan(warmup_ratio=0.3)),
        "oom": ([], RunStatus(state="oom"), TrainingPlan(per_device_train_batch_size=4)),
    }


@pytest.mark.parametrize("case", list(_streams()))
def test_each_symptom_reads_in_japanese(case: str) -> None:
    metrics, status, plan = _streams()[case]
    english = diagnose(metrics, status=status, plan=plan)
    with i18n.using("ja"):
        japanese = diagnose(metrics, status=status, plan=plan)
    assert [s.key for s in japanese] == [s.key for s in english] and japanese
    for ja, en in zip(japanese, english, strict=True):
        assert ja.title != en.title and ja.evidence != en.evidence
        texts = [ja.title, ja.evidence, *(r.description for r in ja.remedies), *(r.source for r in ja.remedies),
                 *(remedy_reason(r, plan) for r in ja.remedies)]
        assert english_words("\n".join(texts), left_for_later=(r"\b(nan|inf)\b",)) == [], texts  # values
        assert [r.changes for r in ja.remedies] == [r.changes for r in en.remedies]  # the same advice
        assert [is_beyond_the_guide(r) for r in ja.remedies] == [is_beyond_the_guide(r) for r in en.remedies]


def test_the_overfitting_advice_in_japanese_names_the_guides_terms() -> None:
    metrics, status, plan = _streams()["overfitting"]
    with i18n.using("ja"):
        symptom = diagnose(metrics, status=status, plan=plan)[0]
    assert symptom.title == "過学習"
    assert symptom.evidence == ("学習損失は 2.1600 から 0.9600 に下がる一方、評価損失は最良値 1.9000（ステップ 20）"
                                "から 2.2000（ステップ 40）に上がりました")
    early, dropout = symptom.remedies[:2]
    assert early.description.startswith("--early-stopping 0 -> 3, --eval-split 0 -> 0.05（")
    assert is_beyond_the_guide(early)
    assert early.source == "ガイドの範囲外: 現在の LoRA の実践（オフ -> 評価 3 回）"
    assert dropout.source == "ガイドのトラブルシューティング: 過学習（対策 1: 0.05 -> 0.1）"
    assert remedy_reason(dropout, plan) == "正則化を強めます。" and not is_beyond_the_guide(dropout)


def test_beyond_the_guide_is_typed_not_read_from_the_words() -> None:
    plan = TrainingPlan(precision="fp16", warmup_ratio=0.3)
    for key in ("loss_not_falling", "overfitting", "oom", "slow_convergence", "diverging", "non_finite"):
        english = remedies(key, plan)
        with i18n.using("ja"):
            japanese = remedies(key, plan)
        assert [is_beyond_the_guide(r) for r in japanese] == [r.source.startswith("beyond the guide")
                                                              for r in english], key
        assert all(not r.source.startswith("beyond") for r in japanese)


def test_the_json_form_is_english_when_made_in_english() -> None:
    metrics, status, plan = _streams()["overfitting"]
    with i18n.using("ja"), i18n.english():  # `runs diagnose --json` runs in English whatever --lang says
        data = symptom_dict(diagnose(metrics, status=status, plan=plan)[0])
    assert data["title"] == "Overfitting" and data["remedies"][0]["source"].startswith("beyond the guide")
