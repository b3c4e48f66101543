"""Inputs (task, data size, VRAM, model) -> every training setting, each with the guide row it came from.

Precedence, applied setting by setting (the README repeats this):

1. Start from the guide's defaults table (the training script's defaults).
2. The task table (chat / domain / code / style) sets r, dropout, learning rate, epochs and the target-module
   pattern. It is the most specific statement of intent, so where it and the data-size table disagree on the
   learning rate or r, the task wins -- with one exception, below.
3. The data-size table fills in whatever the task table leaves open (everything it covers when no task is
   given) and guards against overfitting: with fewer than 1K examples r is capped at the small row's value and
   dropout raised to at least its value.
4. The resource table is a hard limit: it caps r and fixes batch x accumulation (16 in every row of the guide).
   Without a GPU the resource table does not apply and the defaults row's batch and accumulation are used.
5. alpha = ratio x r for the chosen alpha/r style (standard: 2.0, as in every row of every table).
6. A model preset may set a value the guide's tables cannot know (the built-in 4M-parameter demo model needs a
   larger learning rate than the guide's 1B-parameter figures); the reason names the preset and what the tables
   said.
7. With a model and a VRAM figure, the memory estimate checks the result (`lora_tui.core.memory_advice`):
   dropout 0 where PEFT adapts fused experts, gradient checkpointing only when the run needs it, and while it does
   not fit the guide's out-of-memory remedies that are needed (`lora_tui.core.fit`), or 4-bit loading when 16-bit
   cannot fit.

Where the tables agree, their value is used exactly and the reason says they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from lora_tui.core.models.modules import ModelInventory
from lora_tui.core.plan import TrainingPlan, fmt_value
from lora_tui.core.tables import Band, Guide, Row, Task, guide
from lora_tui.core.targets import map_targets
from lora_tui.errors import UserError

SETTINGS = (
    "lora_r", "lora_alpha", "lora_dropout", "learning_rate", "per_device_train_batch_size",
    "gradient_accumulation_steps", "num_train_epochs", "target_modules", "warmup_ratio", "weight_decay",
    "max_seq_length", "gradient_checkpointing", "eval_split", "load_in_4bit",
)
"""Every setting a recommendation fills in (TrainingPlan field names)."""

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


@dataclass
class Recommendation:
    """Recommended values for every setting, each with its reason."""

    values: dict[str, Any]
    """TrainingPlan field -> value."""
    reasons: dict[str, str]
    """TrainingPlan field -> why, naming the guide table and row (and how conflicts were settled)."""
    notes: list[str] = field(default_factory=list)
    """Anything else the user should know (missing inputs, tiers used)."""
    tiers: dict[str, str | None] = field(default_factory=dict)
    """task, data-size and resource rows used (None where the input was not known)."""
    fit_steps: list[dict[str, Any]] = field(default_factory=list)
    """Memory remedies applied to make the plan fit (description, changes, total_bytes)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `values` and `reasons` keyed by setting name, plus notes, tiers and fit steps."""
        return {"values": self.values, "reasons": self.reasons, "notes": self.notes, "tiers": self.tiers,
                "fit_steps": self.fit_steps}

    def plan(self, **overrides: Any) -> TrainingPlan:
        """A TrainingPlan with these values (and any overrides)."""
        return TrainingPlan(**{**self.values, **overrides})


def _cite(row: Row, key: str) -> str:
    return f"{row.cite()}: {key} = {fmt_value(row.settings[key])}"


def _pick(key: str, g: Guide, task: Row | None, data: Band | None) -> tuple[Any, str]:
    """Value and reason for a setting the task and data-size tables both may give (task first)."""
    t = task.settings.get(key) if task is not None else None
    d = data.settings.get(key) if data is not None else None
    if task is not None and t is not None:
        if data is None or d is None:
            return t, _cite(task, key)
        if t == d:
            return t, f"{_cite(task, key)}; the {data.cite()} agrees"
        return t, f"{_cite(task, key)} (the {data.cite()} says {fmt_value(d)}; the task preset takes precedence)"
    if data is not None and d is not None:
        return d, _cite(data, key)
    return g.defaults.settings[key], _cite(g.defaults, key)


def _seq_length(data: DataFacts | None, inventory: ModelInventory | None, default: int) -> tuple[int, str]:
    """max_seq_length from the measured token lengths: the longest example when it is at most twice the 95th
    percentile (nothing is cut), else the 95th percentile (a few outliers should not size every batch's memory);
    rounded up to a multiple of SEQ_MULTIPLE and capped by the model's context. Without token statistics, the
    defaults table's value."""
    limit = inventory.max_position_embeddings if inventory and inventory.max_position_embeddings else None
    stats = data.token_stats if data is not None else None
    if stats is None:
        length = default
        reason = f"defaults table: max_seq_length = {default} (no token statistics for the data)"
    else:
        if stats.max <= 2 * stats.p95:
            target, why = stats.max, f"the longest example is {stats.max:,} tokens (95th percentile {stats.p95:,})"
        else:
            target, why = stats.p95, (f"95% of the examples are at most {stats.p95:,} tokens; the longest "
                                      f"({stats.max:,}) is more than twice that, so it does not size the run")
        length = min(MAX_SEQ_LENGTH, max(SEQ_MULTIPLE, -(-target // SEQ_MULTIPLE) * SEQ_MULTIPLE))
        reason = f"{why}; rounded up to a multiple of {SEQ_MULTIPLE}: {length:,}"
    if limit and length > limit:
        length, reason = limit, reason + f"; capped at the model's {limit:,} positions"
    if stats is not None:
        over = stats.over(length)
        reason += ("; no example is cut" if over == 0 else
                   f"; {over:,} longer example(s) will be cut at the end (first: {stats.first_longer(length)})")
    return length, reason


def recommend(
    *,
    task: str | None = None,
    examples: int | None = None,
    vram_bytes: int | None = None,
    inventory: ModelInventory | None = None,
    style: str = "standard",
    data_report: DataFacts | None = None,
    loss: str | None = None,
    load_in_4bit: bool = False,
) -> Recommendation:
    """Recommend every setting in SETTINGS; see the module docstring for the precedence (one step each).

    `loss` is the loss path the memory estimate assumes (`memory.LOSS_IMPLS`; default: what `lora-tui train` runs);
    `load_in_4bit` plans a QLoRA run from the start.
    """
    g = guide()
    if task is not None and task not in g.tasks:
        raise UserError(f"--task {task}: unknown task; choose one of {', '.join(g.tasks)}")
    try:
        ratio = g.alpha_style(style).ratio
    except KeyError:
        raise UserError(f"--style {style}: unknown; choose one of "
                        f"{', '.join(s.key for s in g.alpha_styles)}") from None
    if examples is None and data_report is not None:
        examples = data_report.examples
    if examples is not None and examples < 0:
        raise UserError(f"--examples must be >= 0, got {examples}")
    task_row = g.tasks[task] if task else None
    data_row = g.data_size_row(examples) if examples is not None else None
    res_row = g.resource_row(vram_bytes) if vram_bytes is not None else None
    values: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    notes: list[str] = []

    for key in ("lora_r", "lora_dropout", "learning_rate", "num_train_epochs"):
        values[key], reasons[key] = _pick(key, g, task_row, data_row)
    _guard_small_data(values, reasons, g, task_row, data_row)
    _apply_resources(values, reasons, notes, g, res_row)
    alpha = values["lora_r"] * ratio
    values["lora_alpha"] = int(alpha) if float(alpha).is_integer() else alpha
    reasons["lora_alpha"] = (f"alpha/r style '{style}' (ratio {ratio:g}): alpha = {ratio:g} x r = "
                             f"{fmt_value(values['lora_alpha'])}; every row of the guide's tables uses alpha = 2r")
    _choose_targets(values, reasons, g, task_row, inventory)
    _fill_defaults(values, reasons, g, vram_bytes)
    values["load_in_4bit"] = load_in_4bit
    reasons["load_in_4bit"] = ("on: as set (--load-in-4bit)" if load_in_4bit else
                               "off: 16-bit LoRA" + ("" if inventory is not None and vram_bytes is not None else
                                                     " (no model and VRAM known to check the memory against)"))
    values["eval_split"], reasons["eval_split"] = _eval_split(examples)
    values["max_seq_length"], reasons["max_seq_length"] = _seq_length(
        data_report, inventory, g.defaults.settings["max_seq_length"])

    _apply_model_preset(values, reasons, inventory)
    rec = Recommendation(
        values={k: values[k] for k in SETTINGS},
        reasons={k: reasons[k] for k in SETTINGS},
        notes=notes,
        tiers={"task": task, "data_size": data_row.key if data_row else None,
               "resource": res_row.key if res_row else None},
    )
    if inventory is not None and vram_bytes is not None:
        _fit(rec, inventory, vram_bytes, loss, data_report)
    elif inventory is not None:
        from lora_tui.core.memory_advice import expert_dropout

        expert_dropout(rec.values, rec.reasons, inventory)
    return rec


def _guard_small_data(values: dict[str, Any], reasons: dict[str, str], g: Guide, task_row: Row | None,
                      data_row: Band | None) -> None:
    """Step 3: with fewer than 1K examples, cap r and raise dropout to the small-data row's values."""
    if data_row is None or task_row is None or data_row.key != g.data_sizes[0].key:
        return
    r_cap, drop_min = data_row.settings["lora_r"], data_row.settings["lora_dropout"]
    if values["lora_r"] > r_cap:
        reasons["lora_r"] = (f"{_cite(task_row, 'lora_r')}, capped at {r_cap} by the {data_row.cite()} "
                             "(a small dataset overfits a large adapter)")
        values["lora_r"] = r_cap
    if values["lora_dropout"] < drop_min:
        reasons["lora_dropout"] = (f"{_cite(task_row, 'lora_dropout')}, raised to {fmt_value(drop_min)} by the "
                                   f"{data_row.cite()} (a small dataset needs more regularisation)")
        values["lora_dropout"] = drop_min


def _apply_resources(values: dict[str, Any], reasons: dict[str, str], notes: list[str], g: Guide,
                     res_row: Row | None) -> None:
    """Step 4: the resource table caps r and fixes batch x accumulation; without a GPU the defaults' 2 x 8."""
    if res_row is None:
        for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
            values[key] = g.defaults.settings[key]
            reasons[key] = _cite(g.defaults, key) + " (no GPU VRAM known, so the resource table does not apply)"
        notes.append("No GPU VRAM known: r is not capped by the resource table and batch x accumulation is the "
                     "defaults row's 2 x 8. Pass --vram-gb to plan for a GPU.")
        return
    r_cap = res_row.settings["lora_r"]
    if values["lora_r"] > r_cap:
        reasons["lora_r"] = f"{res_row.cite()} caps r at {r_cap} (was {values['lora_r']}: {reasons['lora_r']})"
        values["lora_r"] = r_cap
    elif values["lora_r"] == r_cap:
        reasons["lora_r"] += f"; the {res_row.cite()} agrees"
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        values[key], reasons[key] = res_row.settings[key], _cite(res_row, key)
    reasons["per_device_train_batch_size"] += " (effective batch 16, as in every resource row)"


def _choose_targets(values: dict[str, Any], reasons: dict[str, str], g: Guide, task_row: Task | None,
                    inventory: ModelInventory | None) -> None:
    """Step 2's target pattern (the task's, else standard), mapped onto the model's modules."""
    pattern = g.patterns[task_row.pattern if task_row else "standard"]
    targets, mapped_note = map_targets(list(pattern.modules), inventory)
    values["target_modules"] = targets
    origin = f"{task_row.cite()}" if task_row else "the guide's recommended default"
    reasons["target_modules"] = f"target-module pattern '{pattern.key}' ({origin}): {pattern.why}{mapped_note}"


def _eval_split(examples: int | None) -> tuple[float, str]:
    """Beyond the guide (which trains without evaluation): hold out about 5% so that overfitting can be seen and
    the best checkpoint kept, as Unsloth Studio and LLaMA-Factory's val_size do."""
    if examples is None:
        return 0.0, "no data size known, so no evaluation split (beyond the guide: lora-tui holds out ~5% of data)"
    if examples < EVAL_MIN_EXAMPLES:
        return 0.0, (f"{examples} examples: fewer than {EVAL_MIN_EXAMPLES}, so none is held out for evaluation "
                     "(too few to spare, and too few to measure overfitting with)")
    held = min(EVAL_MAX, max(EVAL_MIN, round(EVAL_SHARE * examples)))
    share = round(held / examples, 4)
    return share, (f"beyond the guide: {held} of {examples} examples ({share:.1%}: about {EVAL_SHARE:.0%}, at "
                   f"least {EVAL_MIN}, at most {EVAL_MAX}) held out, chosen by the seed, to measure overfitting "
                   "and keep the best checkpoint")


def _fill_defaults(values: dict[str, Any], reasons: dict[str, str], g: Guide, vram_bytes: int | None) -> None:
    """Step 1's defaults for warmup and weight decay; gradient checkpointing on for GPU runs."""
    for key in ("warmup_ratio", "weight_decay"):
        values[key], reasons[key] = g.defaults.settings[key], _cite(g.defaults, key)
    values["gradient_checkpointing"] = vram_bytes is not None
    reasons["gradient_checkpointing"] = (
        "on for GPU training, as LLaMA-Factory, axolotl and Unsloth do: activations shrink to the layer inputs "
        "for about 30% more time (the guide lists it among its out-of-memory remedies)"
        if vram_bytes is not None else
        "off without a GPU: system RAM is rarely the limit, and recomputing activations costs about 30% time")
    reasons["warmup_ratio"] += (f" (the guide's script uses {g.guide_warmup_ratio:g}; its slow-convergence remedy "
                                "lowers it to 0.1, which lora-tui starts from)")


def _apply_model_preset(values: dict[str, Any], reasons: dict[str, str], inventory: ModelInventory | None) -> None:
    """Apply a model preset's own settings (`recommend` in presets/models/NAME.json), explaining each."""
    if inventory is None:
        return
    for key, spec in (inventory.extra.get("recommend") or {}).items():
        if key not in values:
            raise ValueError(f"model preset {inventory.model_id}: unknown setting {key!r}")
        reasons[key] = (f"model preset '{inventory.model_id}': {key} = {fmt_value(spec['value'])}: {spec['why']} "
                        f"(the guide's tables said {fmt_value(values[key])}: {reasons[key]})")
        values[key] = spec["value"]


def _fit(rec: Recommendation, inventory: ModelInventory, vram_bytes: int, loss: str | None,
         data: DataFacts | None) -> None:
    """Step 7: the memory-aware changes (`core.memory_advice.advise_memory`), each with its reason."""
    from lora_tui.core.memory_advice import advise_memory

    seq = data.token_stats if data is not None else None
    rec.fit_steps = advise_memory(rec.values, rec.reasons, rec.notes, inventory, vram_bytes, loss=loss, seq=seq)
