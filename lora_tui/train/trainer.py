"""lora-tui's SFTTrainer: TRL's trainer with the batches' tokens counted and a length-grouped sampler.

Three small additions, all on transformers' Trainer hooks (not on TRL's loss code):

- `get_batch_samples` (the micro-batches of one optimizer step, fetched before the step runs) adds each batch's
  padded, real (non-padding) and loss-carrying token counts to a `TokenTally`. The counts stay tensors on the
  batch's device, so counting adds no device synchronisation; `TokenTally.totals` reads them at logging steps only.
- `_get_train_sampler` returns a `GroupedSampler` when the plan's `batching` is `grouped`: examples of similar
  length share a batch, so a batch pads to a length close to each of its examples' own.
- `_save` (a checkpoint's adapter) runs with FSDP's activation-checkpoint wrappers out of the module tree
  (`train.distributed.plain_module_names`): with them, PEFT saves an adapter with no weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers.trainer_pt_utils import get_length_grouped_indices
from trl import SFTTrainer

from lora_tui.train.callbacks import TokenTally


class GroupedSampler(torch.utils.data.Sampler[int]):
    """Length-grouped sampling with the batches in random order.

    transformers' `get_length_grouped_indices` shuffles the examples, cuts them into mega-batches (up to 50 groups)
    and sorts each by length, longest first; used as it is, every mega-batch would run from its longest examples to
    its shortest, a schedule the random sampler does not have. Here the groups are shuffled again, except the first
    (it holds the longest example, so running out of memory happens at the first step) and a last partial group
    (kept last, so every other group stays aligned with the batches the data loader cuts). Seeded by seed and
    epoch (`set_epoch`, which the Trainer calls), so a resumed run sees the same order."""

    def __init__(self, lengths: Sequence[int], group: int, seed: int) -> None:
        self.lengths, self.group, self.seed, self.epoch = list(lengths), max(1, group), seed, 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration is (the order depends on it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = get_length_grouped_indices(self.lengths, self.group, generator=generator)
        groups = [indices[i:i + self.group] for i in range(0, len(indices), self.group)]
        tail = [groups.pop()] if len(groups) > 1 and len(groups[-1]) < self.group else []
        middle = [groups[i + 1] for i in torch.randperm(len(groups) - 1, generator=generator).tolist()]
        for chunk in [groups[0], *middle, *tail] if groups else []:
            yield from chunk


def example_lengths(dataset: Any) -> list[int]:
    """Token count of each example of a tokenized `datasets.Dataset` (Arrow list lengths, no Python rows)."""
    import pyarrow.compute as pc

    column = dataset.with_format("arrow")["input_ids"]
    return [int(n) for n in pc.list_value_length(column).to_pylist()]


class LoraTuiTrainer(SFTTrainer):
    """SFTTrainer counting tokens into `tally`, with `grouped=True` sampling length-grouped batches, and saving
    whole adapters under FSDP."""

    def __init__(self, *args: Any, tally: TokenTally, grouped: bool = False, **kwargs: Any) -> None:
        self.tally, self.grouped = tally, grouped
        super().__init__(*args, **kwargs)

    def get_batch_samples(self, epoch_iterator: Iterator[Any], num_batches: int, device: Any) -> Any:
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        for batch in batches:
            self.tally.add(batch)
        return batches, num_items

    def _save(self, output_dir: str | None = None, state_dict: dict[str, Any] | None = None) -> None:
        from lora_tui.train.distributed import plain_module_names

        with plain_module_names(self.model):  # a checkpoint's adapter under FSDP's activation checkpointing
            super()._save(output_dir, state_dict=state_dict)

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.grouped or dataset is None or not hasattr(dataset, "with_format"):
            return super()._get_train_sampler(train_dataset)
        args = self.args
        group = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
        seed = args.data_seed if args.data_seed is not None else args.seed
        return GroupedSampler(example_lengths(dataset), group, seed)


FLAT = ("padding-free", "packed")
"""Batching modes that lay several examples end to end in one row. transformers tells a row's examples apart by
their position ids, which restart at 0 at each example, when the batch has no attention mask and no cache, as
TRL's collator and `compute_loss` (use_cache=False) give it: each example attends to itself only, with SDPA and
eager attention too (checked: a padding-free run logs the same losses as padded batches of the same examples).
FlashAttention does the same without building a mask."""


def flash_attention(batching: str) -> str | None:
    """The attention implementation for a batching mode: FlashAttention 3 or 2 for padding-free and packed batches
    where it is installed on a CUDA GPU; None (transformers' default, SDPA) otherwise, flat batches included
    (`FLAT`: SDPA masks them example by example)."""
    if batching not in FLAT or not torch.cuda.is_available():
        return None
    from lora_tui.core.resolve import flash_attention_installed

    if not flash_attention_installed():
        return None
    import importlib.util

    return "flash_attention_3" if importlib.util.find_spec("flash_attn_interface") else "flash_attention_2"


def batching_config(batching: str, max_seq_length: int) -> dict[str, Any]:
    """SFTConfig arguments for a batching mode. Padding-free batches leave truncation to train/data.py (TRL does
    not cut them); packed ones are best-fit-decreasing packed into rows of max_seq_length."""
    if batching == "padding-free":
        return {"padding_free": True, "max_length": None}
    if batching == "packed":
        return {"packing": True, "packing_strategy": "bfd", "max_length": max_seq_length}
    return {"max_length": max_seq_length}
