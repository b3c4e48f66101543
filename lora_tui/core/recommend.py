"""Inputs (task, data size, VRAM, model, advice style) -> every training setting, each with its exact source.

Two advice styles (`core.sources.ADVICE`): `guide` (the default) applies the guide's tables exactly; `practice`
keeps the guide's r, alpha and dropout logic and takes current LoRA practice for the learning rate, the target
modules and the epochs (`core.advice_styles`). Both are computed; where they differ, the reason of the chosen one
gives the other's value. Precedence, applied setting by setting (the README repeats this):

1. Start from the starting values (`[defaults]` of guide.toml): the guide's training script where it states a
   default, else lora-tui's own default, cited as such.
2. The task preset (chat / domain / code / style) sets r, dropout and the learning rate; its worked example, where
   the guide has one, the epochs (the presets pass none); its target pattern. Where the task and the data-size
   table disagree on r or dropout, the task wins -- except step 3.
3. The data-size table fills what the task leaves open (everything when no task is given). Below 1K examples it
   guards against overfitting (r capped at the small row's value, dropout raised to at least its value) and its
   learning rate applies, since the task's low rate barely moves an adapter in the few steps small data gives.
4. The resource table fixes batch x accumulation (16 in every row of the guide); without a GPU lora-tui's own 2 x 8.
   It caps r -- without a model. With a model and VRAM its r is advisory: the memory estimate decides, and the
   reason gives both numbers (r is a weak memory lever).
5. alpha = ratio x r for the chosen alpha/r style (standard: 2.0, as in every row of every table).
6. A model preset may set a value the tables cannot know (the 4M-parameter demo model's learning rate); the
   reason names the preset and what the tables said.
7. With a model and a VRAM figure, the memory estimate checks the result (`lora_tui.core.memory_advice`):
   dropout 0 where PEFT adapts fused experts, gradient checkpointing only when the run needs it, and while it does
   not fit the guide's out-of-memory remedies that are needed (`lora_tui.core.fit`), or 4-bit loading when 16-bit
   cannot fit.

Every value has a `Citation` (`core.sources`): a guide table row, a worked example, the guide's script, a guide
remedy, common practice, or lora-tui's own rule. Where the tables agree, the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lora_tui.core import advice_styles as styles
from lora_tui.core.data_rules import DataFacts, eval_split, seq_length
from lora_tui.core.models.modules import ModelInventory
from lora_tui.core.plan import TrainingPlan, fmt_value
from lora_tui.core.sources import ADVICE, Citation, SourceKind
from lora_tui.core.tables import Band, Guide, Row, Task, cited, guide, pattern_name, style_name
from lora_tui.core.targets import map_targets
from lora_tui.errors import UserError
from lora_tui.i18n import _, pgettext

SETTINGS = (
    "lora_r", "lora_alpha", "lora_dropout", "learning_rate", "per_device_train_batch_size",
    "gradient_accumulation_steps", "num_train_epochs", "target_modules", "warmup_ratio", "weight_decay",
    "max_seq_length", "gradient_checkpointing", "eval_split", "load_in_4bit",
)
"""Every setting a recommendation fills in (TrainingPlan field names)."""

@dataclass
class Recommendation:
    """Recommended values for every setting, each with its reason and its source."""

    values: dict[str, Any]
    """TrainingPlan field -> value."""
    reasons: dict[str, str]
    """TrainingPlan field -> why, naming the exact source (and how conflicts were settled)."""
    notes: list[str] = field(default_factory=list)
    """Anything else the user should know (missing inputs, tiers used)."""
    tiers: dict[str, str | None] = field(default_factory=dict)
    """task, data-size and resource rows used (None where the input was not known)."""
    fit_steps: list[dict[str, Any]] = field(default_factory=list)
    """Memory remedies applied to make the plan fit (description, changes, total_bytes)."""
    advice: str = "guide"
    """The advice style the values follow: guide or practice."""
    citations: dict[str, Citation] = field(default_factory=dict)
    """TrainingPlan field -> the kind and place of its source."""
    other: dict[str, Any] = field(default_factory=dict)
    """TrainingPlan field -> the other advice style's value, where it differs (before the memory fit)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `values`, `reasons` and `citations` keyed by setting name, plus the advice style, the other
        style's differing values, notes, tiers and fit steps."""
        return {"values": self.values, "reasons": self.reasons, "advice": self.advice,
                "citations": {k: c.to_dict() for k, c in self.citations.items()}, "other": self.other,
                "notes": self.notes, "tiers": self.tiers, "fit_steps": self.fit_steps}

    def plan(self, **overrides: Any) -> TrainingPlan:
        """A TrainingPlan with these values (and any overrides)."""
        return TrainingPlan(**{**self.values, **overrides})


@dataclass
class _Draft:
    """One advice style's values, reasons and citations while they are worked out."""

    values: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    cites: dict[str, Citation] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any, cite: Citation, reason: str | None = None) -> None:
        """A value, its citation and its reason (by default: the citation and the value)."""
        self.values[key], self.cites[key] = value, cite
        self.reasons[key] = reason if reason is not None else _("{source}: {setting} = {value}").format(
            source=cite.where, setting=key, value=fmt_value(value))


@dataclass(frozen=True)
class _Inputs:
    """The validated inputs and the guide rows they select."""

    g: Guide
    task: Task | None
    data: Band | None
    res: Band | None
    ratio: float
    style: str
    examples: int | None
    vram_bytes: int | None
    inventory: ModelInventory | None
    data_report: DataFacts | None
    load_in_4bit: bool
    loss: str | None


def _row_cite(row: Row) -> Citation:
    return Citation(SourceKind.GUIDE_TABLE, row.cite())


def _pick(key: str, x: _Inputs, d: _Draft) -> None:
    """A setting the task and data-size tables both may give (task first), else the starting value."""
    task, data = x.task, x.data
    t = task.settings.get(key) if task is not None else None
    v = data.settings.get(key) if data is not None else None
    if task is not None and t is not None:
        d.set(key, t, _row_cite(task))
        if data is not None and v is not None:
            d.reasons[key] += (_("; {row} agrees").format(row=data.cite()) if t == v else
                               _(" ({row} says {value}; the task preset takes precedence)").format(
                                   row=data.cite(), value=fmt_value(v)))
    elif data is not None and v is not None:
        d.set(key, v, _row_cite(data))
    else:
        d.set(key, x.g.defaults.settings[key], cited(x.g.default_cites[key]))


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
    advice: str = "guide",
) -> Recommendation:
    """Recommend every setting in SETTINGS; see the module docstring for the precedence (one step each).

    `advice` is the style (guide or practice); `loss` is the loss path the memory estimate assumes
    (`memory.LOSS_IMPLS`; default: what `lora-tui train` runs); `load_in_4bit` plans a QLoRA run from the start.
    """
    if advice not in ADVICE:
        raise UserError(_("--advice {advice}: unknown; choose one of {choices}").format(
            advice=advice, choices=", ".join(ADVICE)))
    x = _inputs(task, examples, vram_bytes, inventory, style, data_report, loss, load_in_4bit)
    d = _advise(x, advice)
    other_advice = next(a for a in ADVICE if a != advice)
    o = _advise(x, other_advice)
    other = {k: o.values[k] for k in SETTINGS if o.values[k] != d.values[k]}
    for key, value in other.items():
        said = (_("; the guide says {value} ({source})") if other_advice == "guide" else
                _("; common LoRA practice gives {value} ({source})"))
        d.reasons[key] += said.format(value=fmt_value(value), source=o.cites[key].where)
    rec = Recommendation(
        values={k: d.values[k] for k in SETTINGS}, reasons={k: d.reasons[k] for k in SETTINGS}, notes=d.notes,
        tiers={"task": task, "data_size": x.data.key if x.data else None, "resource": x.res.key if x.res else None},
        advice=advice, citations={k: d.cites[k] for k in SETTINGS}, other=other)
    if inventory is not None and vram_bytes is not None:
        _fit(rec, inventory, vram_bytes, loss, data_report)
    elif inventory is not None:
        from lora_tui.core.memory_advice import expert_dropout

        before = dict(rec.values)
        expert_dropout(rec.values, rec.reasons, inventory)
        _cite_changes(rec, before, _("PEFT's limits on fused experts"))
    return rec


def _inputs(task: str | None, examples: int | None, vram_bytes: int | None, inventory: ModelInventory | None,
            style: str, data_report: DataFacts | None, loss: str | None, load_in_4bit: bool) -> _Inputs:
    """The inputs checked (UserError naming the flag) and the guide rows they select."""
    g = guide()
    if task is not None and task not in g.tasks:
        raise UserError(_("--task {task}: unknown task; choose one of {choices}").format(
            task=task, choices=", ".join(g.tasks)))
    try:
        ratio = g.alpha_style(style).ratio
    except KeyError:
        raise UserError(_("--style {style}: unknown; choose one of {choices}").format(
            style=style, choices=", ".join(s.key for s in g.alpha_styles))) from None
    if examples is None and data_report is not None:
        examples = data_report.examples
    if examples is not None and examples < 0:
        raise UserError(_("--examples must be >= 0, got {examples}").format(examples=examples))
    return _Inputs(g, g.tasks[task] if task else None, g.data_size_row(examples) if examples is not None else None,
                   g.resource_row(vram_bytes) if vram_bytes is not None else None, ratio, style, examples,
                   vram_bytes, inventory, data_report, load_in_4bit, loss)


def _advise(x: _Inputs, advice: str) -> _Draft:
    """One advice style's values, reasons and citations, before the memory fit (steps 1-6)."""
    d = _Draft()
    for key in ("lora_r", "lora_dropout", "learning_rate"):
        _pick(key, x, d)
    _task_learning_rate(x, d)
    _guard_small_data(x, d)
    d.set("num_train_epochs", *(styles.practice_epochs(x.data) if advice == "practice" else
                                styles.guide_epochs(x.g, x.task)))
    pattern, cite, why = styles.practice_pattern() if advice == "practice" else styles.guide_pattern(x.g, x.task)
    targets, mapped = map_targets(list(x.g.patterns[pattern].modules), x.inventory)
    d.set("target_modules", targets, cite, _("target-module pattern '{pattern}': {why}{mapped}").format(
        pattern=pattern_name(pattern), why=why, mapped=mapped))
    _batch(x, d)
    _fill_defaults(x, d)
    _resource_rank(x, d)
    alpha = d.values["lora_r"] * x.ratio
    section = _("the guide's alpha section, style '{style}' (ratio {ratio})").format(
        style=style_name(x.style), ratio=f"{x.ratio:g}")
    d.set("lora_alpha", int(alpha) if float(alpha).is_integer() else alpha, Citation(SourceKind.GUIDE_TABLE, section),
          _("{section}: alpha = {ratio} x r = {alpha}; every row of the guide's tables uses alpha = 2r").format(
              section=section, ratio=f"{x.ratio:g}", alpha=fmt_value(alpha)))
    if advice == "practice":
        d.set("learning_rate", *styles.practice_learning_rate(d.values["lora_r"], x.data))
    _apply_model_preset(d, x.inventory)
    return d


def _task_learning_rate(x: _Inputs, d: _Draft) -> None:
    """Where the task's worked example uses another rate than its preset, say which one is taken and why."""
    if x.task is None:
        return
    example = x.g.example_for(x.task.key)
    if example is None or d.cites["learning_rate"].where != x.task.cite():
        return
    rate = example.settings.get("learning_rate")
    if rate is not None and rate != d.values["learning_rate"]:
        batch = example.settings.get("per_device_train_batch_size")
        uses = (_("; {example} uses {rate} with batch {batch}: the preset is taken, as the guide's stated "
                  "recommendation for the task") if batch else
                _("; {example} uses {rate}: the preset is taken, as the guide's stated recommendation for the task"))
        d.reasons["learning_rate"] += uses.format(example=example.cite(), rate=fmt_value(rate), batch=batch)


def _guard_small_data(x: _Inputs, d: _Draft) -> None:
    """Step 3: below 1K examples with a task, cap r, raise dropout, and take the small-data row's learning rate."""
    small, task = x.data, x.task
    if small is None or task is None or small.key != x.g.data_sizes[0].key:
        return
    r_cap, drop_min, rate = (small.settings[k] for k in ("lora_r", "lora_dropout", "learning_rate"))
    if d.values["lora_r"] > r_cap:
        d.set("lora_r", r_cap, _row_cite(small), _(
            "{task}: lora_r = {r}, capped at {cap} by {row} (a small dataset overfits a large adapter)").format(
                task=task.cite(), r=d.values["lora_r"], cap=r_cap, row=small.cite()))
    if d.values["lora_dropout"] < drop_min:
        d.set("lora_dropout", drop_min, _row_cite(small), _(
            "{task}: lora_dropout = {dropout}, raised to {minimum} by {row} (a small dataset needs more "
            "regularisation)").format(task=task.cite(), dropout=fmt_value(d.values["lora_dropout"]),
                                      minimum=fmt_value(drop_min), row=small.cite()))
    if d.values["learning_rate"] != rate:
        d.set("learning_rate", rate, _row_cite(small), _(
            "{row}: learning_rate = {rate}: below 1K examples the small-data row's rate applies ({task} says "
            "{task_rate}, which barely moves an adapter in the few steps a small dataset gives)").format(
                row=small.cite(), rate=fmt_value(rate), task=task.cite(),
                task_rate=fmt_value(d.values["learning_rate"])))


def _batch(x: _Inputs, d: _Draft) -> None:
    """Step 4's batch x accumulation: the resource row's; without a GPU lora-tui's own 2 x 8."""
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        if x.res is None:
            d.set(key, x.g.defaults.settings[key], cited(x.g.default_cites[key]))
        else:
            d.set(key, x.res.settings[key], _row_cite(x.res))
    if x.res is None:
        d.notes.append(_("No GPU VRAM known: r is not capped by the resource table and batch x accumulation is "
                         "lora-tui's own 2 x 8 (the guide's 8-16 GB row)."))
    else:
        d.reasons["per_device_train_batch_size"] += _(" (effective batch 16, as in every resource row)")


def _fill_defaults(x: _Inputs, d: _Draft) -> None:
    """Step 1's warmup and weight decay, lora-tui's gradient checkpointing, evaluation split, sequence length and
    4-bit loading."""
    g = x.g
    for key in ("warmup_ratio", "weight_decay"):
        d.set(key, g.defaults.settings[key], cited(g.default_cites[key]))
    own = Citation(SourceKind.LORA_TUI, _("lora-tui's own rule"))
    d.set("gradient_checkpointing", x.vram_bytes is not None, own,
          _("lora-tui's own rule: on for GPU training, as LLaMA-Factory, axolotl and Unsloth do: activations shrink "
            "to the layer inputs for about 30% more time (the guide lists it among its out-of-memory remedies)")
          if x.vram_bytes is not None else
          _("lora-tui's own rule: off without a GPU: system RAM is rarely the limit, and recomputing activations "
            "costs about 30% time"))
    if x.load_in_4bit:
        d.set("load_in_4bit", True, Citation(SourceKind.YOURS, "--load-in-4bit"), _("on: as set (--load-in-4bit)"))
    else:
        d.set("load_in_4bit", False, own, _("off: 16-bit LoRA") if x.inventory is not None and x.vram_bytes is not
              None else _("off: 16-bit LoRA (no model and VRAM known to check the memory against)"))
    share, why = eval_split(x.examples)
    d.set("eval_split", share, own, why)
    length, why = seq_length(x.data_report, x.inventory, g.defaults.settings["max_seq_length"])
    seq_cite = cited(g.default_cites["max_seq_length"]) if x.data_report is None or \
        x.data_report.token_stats is None \
        else Citation(SourceKind.LORA_TUI, _("lora-tui's own rule: the measured token lengths"))
    d.set("max_seq_length", length, seq_cite, why)


def _resource_rank(x: _Inputs, d: _Draft) -> None:
    """Step 4's r: capped by the resource row without a model; with a model and VRAM the memory estimate decides."""
    row = x.res
    if row is None:
        return
    cap, r, before = row.settings["lora_r"], d.values["lora_r"], d.reasons["lora_r"]
    if r == cap:
        d.reasons["lora_r"] += _("; {row} agrees").format(row=row.cite())
        return
    if r < cap:
        return
    if x.inventory is None:
        d.set("lora_r", cap, _row_cite(row), _("{row} caps r at {cap} (was {r}: {before})").format(
            row=row.cite(), cap=cap, r=r, before=before))
        return
    from lora_tui.core.memory import plan_estimate
    from lora_tui.core.units import fmt_gib

    inventory = x.inventory

    def need(rank: int) -> Any:
        plan = TrainingPlan(**{**d.values, "lora_r": rank, "lora_alpha": rank * x.ratio})
        return plan_estimate(inventory, plan, x.vram_bytes, loss=x.loss)

    at_r, at_cap = need(r), need(cap)
    vram = f"{fmt_gib(x.vram_bytes or 0)} ({(x.vram_bytes or 0) / 1e9:g} GB)"
    said = _("{row} caps r at {cap}; with gradient checkpointing, at r {r} this model needs {need} of {vram}, "
             "{verdict}; at r {cap} {need_at_cap}").format(
                 row=row.cite(), cap=cap, r=r, need=fmt_gib(at_r.total_bytes), vram=vram,
                 verdict=verdict_words(at_r.verdict), need_at_cap=fmt_gib(at_cap.total_bytes))
    if at_r.verdict != "will_not_fit":
        d.reasons["lora_r"] = _("{before}; {said}, so r {r} is kept (with a model the memory estimate "
                                "decides)").format(before=before, said=said, r=r)
    else:
        d.set("lora_r", cap, _row_cite(row), _("{said}, so the cap applies (was {r}: {before})").format(
            said=said, r=r, before=before))


def _apply_model_preset(d: _Draft, inventory: ModelInventory | None) -> None:
    """Step 6: a model preset's own settings (`recommend` in presets/models/NAME.json), explaining each."""
    if inventory is None:
        return
    for key, spec in (inventory.extra.get("recommend") or {}).items():
        if key not in d.values:
            raise ValueError(f"model preset {inventory.model_id}: unknown setting {key!r}")
        d.set(key, spec["value"], Citation(SourceKind.LORA_TUI, _("lora-tui's model preset '{model}'").format(
            model=inventory.model_id)),
              _("model preset '{model}': {setting} = {value}: {why} (the guide's tables said {before}: "
                "{reason})").format(model=inventory.model_id, setting=key, value=fmt_value(spec["value"]),
                                    why=_(spec["why"]), before=fmt_value(d.values[key]), reason=d.reasons[key]))


def _cite_changes(rec: Recommendation, before: dict[str, Any], why: str) -> None:
    """Values the memory steps changed are lora-tui's (the estimate's), not the tables'."""
    for key, value in before.items():
        if rec.values[key] != value:
            rec.citations[key] = Citation(SourceKind.LORA_TUI, _("lora-tui's own rule: {why}").format(why=why))


def _fit(rec: Recommendation, inventory: ModelInventory, vram_bytes: int, loss: str | None,
         data: DataFacts | None) -> None:
    """Step 7: the memory-aware changes (`core.memory_advice.advise_memory`), each with its reason."""
    from lora_tui.core.memory_advice import advise_memory

    seq = data.token_stats if data is not None else None
    before = dict(rec.values)
    rec.fit_steps = advise_memory(rec.values, rec.reasons, rec.notes, inventory, vram_bytes, loss=loss, seq=seq)
    _cite_changes(rec, before, _("the memory estimate"))


def verdict_words(verdict: str) -> str:
    """A memory verdict (fits / tight / will_not_fit / unknown) in words: `will not fit` in English."""
    return pgettext("memory verdict", verdict.replace("_", " "))
