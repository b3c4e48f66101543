"""lora-tui's SFTTrainer additions without training: the token tally, the grouped sampler, the batching modes."""

from __future__ import annotations

import random

import pytest
import torch

from lora_tui.train.callbacks import TokenTally
from lora_tui.train.trainer import GroupedSampler, batching_config, flash_attention


def test_tally_counts_padding_real_and_loss_carrying_tokens() -> None:
    tally = TokenTally()
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    labels = torch.tensor([[-100, -100, 7, 8, 9], [-100, 4, -100, -100, -100]])
    tally.add({"input_ids": torch.ones(2, 5, dtype=torch.long), "attention_mask": mask, "labels": labels})
    assert tally.totals() == (10, 7, 4)  # the label at position 0 is never scored: 7, 8, 9 and 4
    tally.add({"input_ids": torch.ones(1, 6, dtype=torch.long), "labels": torch.full((1, 6), 3),
               "position_ids": torch.arange(6)[None]})  # padding-free: every position is real
    assert tally.totals() == (16, 13, 9)


def _padding(order: list[int], lengths: list[int], batch: int) -> float:
    padded = sum(batch * max(lengths[i] for i in order[s:s + batch]) for s in range(0, len(order), batch))
    return 1 - sum(lengths) / padded


def test_grouped_sampler_is_a_seeded_permutation_with_less_padding_than_random() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(20, 1000) for _ in range(403)]
    sampler = GroupedSampler(lengths, group=8, seed=42)
    first = list(sampler)
    assert sorted(first) == list(range(403)) and len(sampler) == 403
    assert lengths[first[0]] == max(lengths)  # the longest batch first: out of memory shows at step 1
    assert list(GroupedSampler(lengths, group=8, seed=42)) == first  # seeded: a resume sees the same order
    sampler.set_epoch(1)
    assert list(sampler) != first
    shuffled = list(range(403))
    random.Random(1).shuffle(shuffled)
    assert _padding(first, lengths, 8) < 0.1 < 0.3 < _padding(shuffled, lengths, 8)


def test_grouped_batches_are_not_ordered_by_length() -> None:
    """transformers' grouping alone runs each mega-batch from long to short; the groups are shuffled here."""
    lengths = list(range(1, 801))
    order = list(GroupedSampler(lengths, group=4, seed=0))
    group_max = [max(lengths[i] for i in order[s:s + 4]) for s in range(4, len(order), 4)]
    falls = sum(1 for a, b in zip(group_max, group_max[1:], strict=False) if b < a)
    assert 0.3 < falls / len(group_max) < 0.7


def test_batching_modes_give_the_trainer_settings() -> None:
    assert batching_config("grouped", 512) == {"max_length": 512}
    assert batching_config("random", 512) == {"max_length": 512}
    assert batching_config("padding-free", 512) == {"padding_free": True, "max_length": None}
    assert batching_config("packed", 512) == {"packing": True, "packing_strategy": "bfd", "max_length": 512}
    assert flash_attention("grouped") is None and flash_attention("random") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="the attention without a GPU")
@pytest.mark.parametrize("mode", ["padding-free", "packed"])
def test_flat_batches_without_flash_attention_train_on_the_default_attention(mode: str) -> None:
    assert flash_attention(mode) is None  # SDPA masks each example of a row (test_flat_batches trains them)
