"""The memory estimate follows the batch shape of the plan's `batching` (issue 16)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lora_tui.core.memory import plan_estimate
from lora_tui.core.models.modules import load_inventory
from lora_tui.core.plan import TrainingPlan

LENGTHS = SimpleNamespace(median=200, max=600)


@pytest.mark.parametrize("batching", ["grouped", "random", "padding-free"])
def test_padded_and_padding_free_batches_are_at_most_the_worst_padded_one(batching: str) -> None:
    inv = load_inventory("gemma-3-1b-it")
    plan = TrainingPlan(model="gemma-3-1b-it", max_seq_length=1024, per_device_train_batch_size=2, batching=batching)
    est = plan_estimate(inv, plan, int(8e9), lengths=LENGTHS)
    assert est.settings["seq_len"] == 600 and est.settings["seq_basis"].startswith("worst padded batch")


def test_packed_rows_are_full_whatever_the_lengths() -> None:
    inv = load_inventory("gemma-3-1b-it")
    plan = TrainingPlan(model="gemma-3-1b-it", max_seq_length=1024, per_device_train_batch_size=2, batching="packed")
    est = plan_estimate(inv, plan, int(8e9), lengths=LENGTHS)
    grouped = plan_estimate(inv, TrainingPlan(model="gemma-3-1b-it", max_seq_length=1024,
                                              per_device_train_batch_size=2), int(8e9), lengths=LENGTHS)
    assert est.settings["seq_len"] == 1024 and est.settings["seq_basis"] == "packed rows of max_seq_length 1024 tokens"
    assert est.total_bytes > grouped.total_bytes
