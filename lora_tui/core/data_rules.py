"""The settings the data itself decides: max_seq_length from the measured token lengths, and the evaluation split.

Both are lora-tui's own rules (the guide states neither): `recommend` calls them, and their reasons say so.
"""

from __future__ import annotations

from typing import Protocol

from lora_tui.core.models.inventory import ModelInventory
from lora_tui.core.plan import split_for
from lora_tui.i18n import _

EVAL_MIN_EXAMPLES = 100
"""Below this many examples no evaluation split is held out: too few to spare, too few to measure with."""
EVAL_SHARE, EVAL_MIN, EVAL_MAX = 0.05, 16, 500
"""The held-out split: about 5% of the examples, at least 16 and at most 500."""

SEQ_MULTIPLE = 64
"""A recommended max_seq_length is a multiple of this (GPU kernels like multiples of 64)."""

MAX_SEQ_LENGTH = 1 << 20
"""The largest max_seq_length recommended (TrainingPlan's bound)."""


class TokenFacts(Protocol):
    """What the recommendation reads of a dataset's token statistics."""

    @property
    def p95(self) -> int:
        """95th-percentile length in tokens."""

    @property
    def max(self) -> int:
        """Longest example in tokens."""

    def over(self, length: int) -> int:
        """How many examples are longer than `length` tokens."""

    def first_longer(self, length: int) -> str | None:
        """Where the first example longer than `length` tokens is (file:line)."""


class DataFacts(Protocol):
    """What the recommendation reads of a dataset report (core.dataset.report.DatasetReport has it)."""

    @property
    def examples(self) -> int:
        """Valid examples."""

    @property
    def token_stats(self) -> TokenFacts | None:
        """Token lengths, when measured."""


def seq_length(data: DataFacts | None, inventory: ModelInventory | None, default: int) -> tuple[int, str]:
    """max_seq_length from the measured token lengths: the longest example when it is at most twice the 95th
    percentile (nothing is cut), else the 95th percentile (a few outliers should not size every batch's memory);
    rounded up to a multiple of SEQ_MULTIPLE and capped by the model's context. Without token statistics,
    lora-tui's own default."""
    limit = inventory.max_position_embeddings if inventory and inventory.max_position_embeddings else None
    stats = data.token_stats if data is not None else None
    if stats is None:
        length = default
        reason = _("lora-tui's own default: max_seq_length = {default} (the guide states no sequence length; no "
                   "token statistics for the data)").format(default=default)
    else:
        if stats.max <= 2 * stats.p95:
            target, why = stats.max, _("the longest example is {max} tokens (95th percentile {p95})").format(
                max=f"{stats.max:,}", p95=f"{stats.p95:,}")
        else:
            target, why = stats.p95, _("95% of the examples are at most {p95} tokens; the longest ({max}) is more "
                                       "than twice that, so it does not size the run").format(
                                           p95=f"{stats.p95:,}", max=f"{stats.max:,}")
        length = min(MAX_SEQ_LENGTH, max(SEQ_MULTIPLE, -(-target // SEQ_MULTIPLE) * SEQ_MULTIPLE))
        reason = _("{why}; rounded up to a multiple of {multiple}: {length}").format(
            why=why, multiple=SEQ_MULTIPLE, length=f"{length:,}")
    if limit and length > limit:
        length, reason = limit, reason + _("; capped at the model's {limit} positions").format(limit=f"{limit:,}")
    if stats is not None:
        over = stats.over(length)
        reason += (_("; no example is cut") if over == 0 else
                   _("; {count} longer example(s) will be cut at the end (first: {first})").format(
                       count=f"{over:,}", first=stats.first_longer(length)))
    return length, reason


def eval_split(examples: int | None) -> tuple[float, str]:
    """Beyond the guide (which trains without evaluation): hold out about 5% so that overfitting can be seen and
    the best checkpoint kept, as Unsloth Studio and LLaMA-Factory's val_size do."""
    if examples is None:
        return 0.0, _("no data size known, so no evaluation split (beyond the guide: lora-tui holds out ~5% of "
                      "data)")
    if examples < EVAL_MIN_EXAMPLES:
        return 0.0, _("{examples} examples: fewer than {minimum}, so none is held out for evaluation (too few to "
                      "spare, and too few to measure overfitting with)").format(examples=examples,
                                                                                minimum=EVAL_MIN_EXAMPLES)
    held = min(EVAL_MAX, max(EVAL_MIN, round(EVAL_SHARE * examples)))
    share = split_for(examples, held)  # exactly `held`, as the training process's split takes them
    return share, _("beyond the guide: {held} of {examples} examples ({share}: about {about}, at least {minimum}, "
                    "at most {maximum}) held out, chosen by the seed, to measure overfitting and keep the best "
                    "checkpoint").format(held=held, examples=examples, share=f"{share:.1%}",
                                         about=f"{EVAL_SHARE:.0%}", minimum=EVAL_MIN, maximum=EVAL_MAX)
