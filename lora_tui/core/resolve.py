"""The only place where inputs become a plan: `resolve(given, inputs) -> ResolvedPlan`.

The wizard calls `resolve` on every change with the fields the person set; `lora-tui train` calls it once with
its flags (and `--config` run file). Both therefore get the same plan, the same sources and the same reasons for
the same intent. Precedence, field by field: given > config (run file) > recommended > TrainingPlan default.
After the merge, the derived rules (each in one function below) run in this order:

1. a chosen target pattern (`given[PATTERN]`) becomes this model's module names (Phi-3's fused `qkv_proj`);
2. a given batch size keeps the recommended effective batch (accumulation = effective / batch);
3. a given r keeps the recommended alpha/r ratio;
4. with N processes in all (machines x processes per machine) a recommended/default accumulation is divided by N
   (the effective batch stays);
5. an output directory not given is the first free `RUNS_ROOT/MODEL`, `MODEL-2`, ...;
6. a save interval not given makes about `EVALUATIONS` checkpoints (and, with an evaluation split, evaluations,
   which run at every save) over the run's optimizer steps, so the best one can be kept;
7. batching not given is padding-free on a GPU with FlashAttention installed, else length-grouped;
8. `distributed` not given, with several processes, a model and a VRAM figure: fsdp only when DDP's per-GPU estimate
   does not fit one GPU and FSDP's does (`core.memory_sharded.choose`), and in 16-bit instead of the
   recommendation's 4-bit loading when that was its way out; else ddp. A given ddp that does not fit while FSDP
   would is kept, its reason and a note saying so.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lora_tui.core.paths import default_output
from lora_tui.core.plan import TrainingPlan, fmt_value, held_out
from lora_tui.core.recommend import recommend
from lora_tui.core.targets import pattern_modules, pattern_of
from lora_tui.errors import UserError
from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.core.dataset.report import DatasetReport
    from lora_tui.core.models.inventory import ModelInventory
    from lora_tui.core.recommend import Recommendation

EVALUATIONS = 10
"""Checkpoints (and evaluations) a run makes when its save interval is not given."""

PATTERN = "target_pattern"
"""Key of `given` that chooses one of the guide's target patterns by name (minimal, standard, maximum)."""


@dataclass(frozen=True)
class PlanInputs:
    """What a plan is made from besides the values a person sets: the machine, the data and the model."""

    data_report: DatasetReport | None = None
    """The inspected data (examples, token statistics); None before inspection."""
    vram_bytes: int | None = None
    """Usable GPU memory in bytes; None on a CPU or before detection."""
    inventory: ModelInventory | None = None
    """The model's module inventory; None before the model is known."""
    style: str = "standard"
    """The alpha/r style of the recommendation: conservative, standard or aggressive."""
    runs_root: Path | None = None
    """Where a run directory goes when none is given (None: `$LORA_TUI_RUNS` or ./runs)."""


@dataclass
class ResolvedPlan:
    """A plan with the source and, where a rule chose it, the reason of every value."""

    plan: TrainingPlan
    """Every setting of the run, validated."""
    sources: dict[str, str]
    """Field -> given / config / recommended / default (with a note when a rule adjusted it)."""
    reasons: dict[str, str]
    """Field -> why it has its value, for every value not set by the person as it is."""
    notes: list[str] = field(default_factory=list)
    """The recommendation's notes (missing inputs, tiers used)."""
    target_pattern: str = "custom"
    """The guide's pattern the targets are on this model (minimal, standard, maximum), or custom."""
    fit_steps: list[dict[str, Any]] = field(default_factory=list)
    """Memory remedies the recommendation applied to fit the VRAM."""
    inputs: PlanInputs = field(default_factory=PlanInputs)
    """What the plan was resolved from (launch validates against it instead of measuring again)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: plan, sources, reasons, notes, target pattern."""
        return {"plan": self.plan.to_dict(), "sources": dict(self.sources), "reasons": dict(self.reasons),
                "notes": list(self.notes), "target_pattern": self.target_pattern}


def resolve(given: Mapping[str, Any], inputs: PlanInputs, *, config: Mapping[str, Any] | None = None
            ) -> ResolvedPlan:
    """Merge given values, a run file's values and the recommendation; apply the derived rules; validate.

    Raises UserError naming the field (and its flag) when a value is invalid.
    """
    person = {k: v for k, v in given.items() if v is not None}
    pattern = person.pop(PATTERN, None)
    layers = {"given": person, "config": {k: v for k, v in (config or {}).items() if v is not None}}
    for label, layer in layers.items():
        unknown = sorted(set(layer) - set(TrainingPlan.field_names()))
        if unknown:
            raise UserError(_("{layer} settings: unknown setting(s) {names}").format(layer=label,
                                                                                     names=", ".join(unknown)))
    task = person.get("task", layers["config"].get("task"))
    advice = person.get("advice", layers["config"].get("advice", TrainingPlan.advice))
    rec = recommend(task=task, vram_bytes=inputs.vram_bytes, inventory=inputs.inventory, style=inputs.style,
                    data_report=inputs.data_report, advice=advice)
    values, sources = _merge(layers["given"], layers["config"], rec.values)
    reasons = {k: v for k, v in rec.reasons.items() if sources[k] == "recommended"}
    if pattern is not None and sources["target_modules"] not in ("given", "config"):
        _apply_pattern(str(pattern), values, sources, reasons, inputs.inventory)
    _keep_effective_batch(values, sources, rec.values, reasons)
    _alpha_follows_given_rank(values, sources, rec.values, reasons)
    _account_for_processes(values, sources, reasons)
    _save_interval(values, sources, reasons, inputs.data_report)
    stats = inputs.data_report.token_stats if inputs.data_report is not None else None
    _batching(values, sources, reasons, inputs.vram_bytes, stats.max if stats is not None else None)
    if "output" not in values:
        values["output"] = str(default_output(str(values.get("model", TrainingPlan.model)), inputs.runs_root))
    notes, fit_steps = list(rec.notes), list(rec.fit_steps)
    _distributed(values, sources, reasons, notes, fit_steps, inputs)
    plan = TrainingPlan.from_dict(values, where="settings")
    _check_rank(plan, inputs.inventory)
    _check_peft_limits(plan, inputs.inventory)
    return ResolvedPlan(plan=plan, sources=sources, reasons=reasons, notes=notes,
                        target_pattern=pattern_of(plan.target_modules, inputs.inventory),
                        fit_steps=fit_steps, inputs=inputs)


def _distributed(values: dict[str, Any], sources: dict[str, str], reasons: dict[str, str], notes: list[str],
                 fit_steps: list[dict[str, Any]], inputs: PlanInputs) -> None:
    """Rule 8: ddp or fsdp for a run on several processes (`core.memory_sharded.choose`), with both per-GPU
    figures; a given value is kept (with a note when a given ddp does not fit and fsdp would)."""
    per_node = values.get("num_processes", TrainingPlan.num_processes)
    nodes = values.get("nnodes", TrainingPlan.nnodes)
    if not (_positive_int(per_node) and _positive_int(nodes)):
        return  # TrainingPlan refuses a bad value, naming the flag
    from lora_tui.core.memory_sharded import choose, given_does_not_fit, uncompared

    given = sources["distributed"] in ("given", "config")
    inv, vram = inputs.inventory, inputs.vram_bytes
    why = uncompared(per_node * nodes, inv, vram)
    if why is not None or inv is None or vram is None:
        if not given and why is not None:
            reasons["distributed"] = why
        return
    try:
        plan = TrainingPlan.from_dict(values if given else {**values, "distributed": "ddp"}, where="settings")
    except UserError:
        return  # refused below, naming the field

    lengths = inputs.data_report.token_stats if inputs.data_report is not None else None
    if given:
        warning = given_does_not_fit(inv, plan, vram, lengths=lengths)
        if warning is not None:
            reasons["distributed"] = warning
            notes.append(warning)
        return
    last = fit_steps[-1] if fit_steps else None
    four_bit = sources["load_in_4bit"] == "recommended" and last is not None and last["kind"] == "four_bit"
    chosen = choose(inv, plan, vram, lengths=lengths, four_bit_way_out=four_bit,
                    fixed=frozenset(k for k, v in sources.items() if v in ("given", "config")))
    values["distributed"], sources["distributed"], reasons["distributed"] = chosen.distributed, "recommended", \
        chosen.reason
    for name, (value, why) in chosen.changes.items():
        values[name], reasons[name] = value, why
    if chosen.distributed != "fsdp":
        return
    if sources.get("gradient_checkpointing") == "recommended" and values.get("gradient_checkpointing"):
        from lora_tui.core.memory_advice import sharded_checkpointing_reason

        reasons["gradient_checkpointing"] = sharded_checkpointing_reason(values, inv, vram, lengths)
    if last is not None and (last["kind"] == "note" or "load_in_4bit" in chosen.changes):
        fit_steps.pop()  # one GPU's way out (4-bit loading) or its dead end is not this run's: FSDP fits
        if fit_steps and fit_steps[-1]["kind"] == "tried":
            fit_steps.pop()  # nor is one GPU's 16-bit dead end that led to 4-bit loading
        said = _("Memory: {description}.").format(description=last["description"])
        notes[:] = [note for note in notes if note != said]
    notes.append(_("Memory: {description}.").format(description=chosen.reason))


def with_processes(rec: Recommendation, processes: Mapping[str, Any], inputs: PlanInputs) -> Recommendation:
    """`rec` (made for one process) for a run on `processes` (num_processes, nnodes, distributed and master_addr
    as given), by the rules `resolve` applies: the accumulation divided over every process (rule 4), then ddp or
    fsdp with both per-GPU figures (rule 8). Values a rule changed cite lora-tui's rule; `distributed` joins the
    values. What `lora-tui recommend` shows; UserError naming the flag for a bad process value."""
    import dataclasses

    from lora_tui.core.sources import Citation, SourceKind

    given = {k: v for k, v in processes.items() if v is not None}
    values: dict[str, Any] = {**rec.values, **given}
    if inputs.inventory is not None:
        values["model"] = inputs.inventory.model_id
    sources = {**dict.fromkeys(TrainingPlan.field_names(), "default"), **dict.fromkeys(rec.values, "recommended"),
               **{k: "given" for k, c in rec.citations.items() if c.kind == SourceKind.YOURS},
               **dict.fromkeys(given, "given")}
    reasons, notes, fit_steps = dict(rec.reasons), list(rec.notes), list(rec.fit_steps)
    _account_for_processes(values, sources, reasons)
    _distributed(values, sources, reasons, notes, fit_steps, inputs)
    values["distributed"] = TrainingPlan.from_dict(values, where="settings").distributed  # refuses a bad value
    if "distributed" in given:
        from lora_tui.core.memory_sharded import as_set

        reasons["distributed"] = reasons.get("distributed") or as_set(values["distributed"])
    own = {key: Citation(SourceKind.LORA_TUI, _("lora-tui's own rule: {why}").format(why=why)) for key, why in (
        ("gradient_accumulation_steps", _("the effective batch kept over every process")),
        ("distributed", _("the memory estimate")))}
    keys = [*rec.values, "distributed"]
    citations = {k: Citation(SourceKind.YOURS, "--distributed") if k == "distributed" and "distributed" in given
                 else rec.citations[k] if k in rec.values and values[k] == rec.values[k]
                 else own.get(k, own["distributed"]) for k in keys}
    return dataclasses.replace(rec, values={k: values[k] for k in keys}, reasons={k: reasons[k] for k in keys},
                               notes=notes, fit_steps=fit_steps, citations=citations)


def _check_rank(plan: TrainingPlan, inventory: ModelInventory | None) -> None:
    """r larger than the narrowest targeted layer adds parameters without adding rank: refuse it, naming both."""
    if inventory is None:
        return
    from lora_tui.core.lora_math import compute_lora_math

    rows = compute_lora_math(inventory, r=plan.lora_r, lora_alpha=plan.lora_alpha,
                             target_modules=list(plan.target_modules)).rows
    if not rows:
        return  # no target matches: the launch check names the unknown names
    narrow = min(rows, key=lambda row: min(row.in_features, row.out_features))
    width = min(narrow.in_features, narrow.out_features)
    if plan.lora_r > width:
        raise UserError(_("`lora_r` (--lora-r) {r} is larger than the narrowest targeted layer ({name}, {fan_in} -> "
                          "{fan_out}); use at most {width}").format(r=plan.lora_r, name=narrow.name,
                                                                   fan_in=narrow.in_features,
                                                                   fan_out=narrow.out_features, width=width))


def _check_peft_limits(plan: TrainingPlan, inventory: ModelInventory | None) -> None:
    """What PEFT and bitsandbytes refuse, said before the run: dropout on fused experts (target_parameters), 4-bit
    loading of a model bitsandbytes cannot quantise, and 4-bit loading without bitsandbytes."""
    if inventory is not None and plan.lora_dropout > 0:
        from lora_tui.core.memory_advice import expert_parameters

        params = expert_parameters(inventory, list(plan.target_modules))
        if params:
            raise UserError(_("`lora_dropout` (--lora-dropout) {dropout}: PEFT adapts {model}'s fused experts "
                              "({params}) through target_parameters, which cannot apply dropout; use --lora-dropout 0 "
                              "or target attention modules only").format(
                                  dropout=fmt_value(plan.lora_dropout), model=inventory.model_id,
                                  params=", ".join(params)))
    if not plan.load_in_4bit:
        return
    if inventory is not None:
        from lora_tui.core.memory import four_bit_problem

        problem = four_bit_problem(inventory)
        if problem is not None:
            raise UserError(_("--load-in-4bit: {problem}; train {model} in 16-bit instead").format(
                problem=problem, model=inventory.model_id))
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError(_("--load-in-4bit needs bitsandbytes, which is not installed: `pip install bitsandbytes`, "
                          "or train without --load-in-4bit"))


def _merge(given: Mapping[str, Any], config: Mapping[str, Any], recommended: Mapping[str, Any]
           ) -> tuple[dict[str, Any], dict[str, str]]:
    """Each field from the first layer that has it: given, config, recommended; else the default."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in TrainingPlan.field_names():
        for layer, label in ((given, "given"), (config, "config"), (recommended, "recommended")):
            if name in layer:
                values[name], sources[name] = layer[name], label
                break
        else:
            sources[name] = "default"
    return values, sources


def _apply_pattern(pattern: str, values: dict[str, Any], sources: dict[str, str], reasons: dict[str, str],
                   inventory: ModelInventory | None) -> None:
    """Rule 1: a chosen pattern -> this model's module names."""
    modules, note = pattern_modules(pattern, inventory)
    if not modules:
        raise UserError(_("target pattern {pattern}: none of its modules exist in this model{note}; type the module "
                          "names instead").format(pattern=repr(pattern), note=note))
    values["target_modules"], sources["target_modules"] = modules, "given"
    reasons["target_modules"] = _("the guide's '{pattern}' pattern, as you chose{note}").format(pattern=pattern,
                                                                                                note=note)


def _save_interval(values: dict[str, Any], sources: dict[str, str], reasons: dict[str, str],
                   data: DatasetReport | None) -> None:
    """Rule 6: save (and evaluate) about EVALUATIONS times per run when the interval is not given."""
    if sources["save_steps"] != "default" or data is None:
        return
    plan_values = {name: values.get(name, getattr(TrainingPlan, name)) for name in
                   ("per_device_train_batch_size", "gradient_accumulation_steps", "num_processes",
                    "num_train_epochs", "max_steps", "eval_split")}
    nodes = values.get("nnodes", TrainingPlan.nnodes)
    if not all(_positive_int(v) for v in (plan_values["per_device_train_batch_size"],
                                          plan_values["gradient_accumulation_steps"], plan_values["num_processes"],
                                          nodes)):
        return  # TrainingPlan refuses a bad value, naming the flag
    plan_values["num_processes"] *= nodes  # every process of every machine takes its share of a step
    steps = total_steps(data.examples, **plan_values)
    interval = max(1, steps // EVALUATIONS)
    values["save_steps"], sources["save_steps"] = interval, "recommended"
    reasons["save_steps"] = (_("{steps} optimizer steps / {count} = a checkpoint and evaluation every {interval} "
                               "steps, so the best one can be kept (beyond the guide)") if plan_values["eval_split"]
                             else _("{steps} optimizer steps / {count} = a checkpoint every {interval} steps, so the "
                                    "best one can be kept (beyond the guide)")).format(
                                        steps=steps, count=EVALUATIONS, interval=interval)


def flash_attention_installed() -> bool:
    """True when FlashAttention 2 or 3 is installed (looked up, not imported: core imports no heavy library)."""
    return any(importlib.util.find_spec(name) is not None for name in ("flash_attn", "flash_attn_interface"))


def _batching(values: dict[str, Any], sources: dict[str, str], reasons: dict[str, str],
              vram_bytes: int | None, longest: int | None) -> None:
    """Rule 7: padding-free batches where FlashAttention attends within each example of a flat batch with no mask
    (a GPU with flash-attn installed), else length-grouped batches; packing changes what a step is, so only when
    asked."""
    if sources.get("batching", "default") != "default":
        if values.get("batching") == "padding-free" and not (vram_bytes is not None and flash_attention_installed()):
            reasons["batching"] = _flat_without_flash(values, longest)
        return
    sources["batching"] = "recommended"
    if vram_bytes is not None and flash_attention_installed():
        values["batching"] = "padding-free"
        reasons["batching"] = _("lora-tui's own rule: FlashAttention is installed, so a batch's examples are laid "
                                "end to end without padding, the same examples per step as grouped batches")
        return
    values["batching"] = "grouped"
    needs = _("FlashAttention (pip install flash-attn)") if vram_bytes is not None else \
        _("a GPU with FlashAttention")
    reasons["batching"] = _("lora-tui's own rule: examples of similar length share a batch, so little of it is "
                            "padding; padding-free is picked only with {needs}, since without it attention runs "
                            "over the whole flattened batch under a mask (--batching padding-free still trains "
                            "correctly)").format(needs=needs)


def _flat_without_flash(values: dict[str, Any], longest: int | None) -> str:
    """The reason of a padding-free batching set where FlashAttention is not: what the block mask costs, for a
    batch of the longest examples (the data's longest, cut at max_seq_length)."""
    from lora_tui.core.units import fmt_gib_or_mib

    seq = int(values.get("max_seq_length", TrainingPlan.max_seq_length))
    tokens = int(values.get("per_device_train_batch_size", TrainingPlan.per_device_train_batch_size)) * min(
        seq, longest or seq)
    return _("padding-free as set: without FlashAttention each batch is one row of up to {tokens} tokens that "
             "attention covers whole, under a block mask of up to {mask} (tokens squared, one byte each; not in the "
             "memory estimate); grouped batches attend example by example").format(
                 tokens=f"{tokens:,}", mask=fmt_gib_or_mib(tokens * tokens))


def total_steps(examples: int, *, per_device_train_batch_size: int, gradient_accumulation_steps: int,
                num_processes: int, num_train_epochs: float, max_steps: int, eval_split: float) -> int:
    """Optimizer steps a run takes: `max_steps` when set, else epochs x ceil(train examples / effective batch)."""
    if isinstance(max_steps, int) and max_steps > 0:
        return max_steps
    train = examples - held_out(examples, eval_split)
    per_epoch = math.ceil(max(train, 1) / (per_device_train_batch_size * gradient_accumulation_steps * num_processes))
    return max(1, math.ceil(per_epoch * float(num_train_epochs)))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _keep_effective_batch(values: dict[str, Any], sources: dict[str, str], recommended: Mapping[str, Any],
                          reasons: dict[str, str]) -> None:
    """Rule 2: a given batch with a recommended accumulation keeps the recommended effective batch (16 in every
    resource row of the guide)."""
    if sources["per_device_train_batch_size"] not in ("given", "config"):
        return
    if sources["gradient_accumulation_steps"] != "recommended":
        return
    if not _positive_int(values["per_device_train_batch_size"]):
        return  # TrainingPlan refuses it, naming the flag
    target = recommended["per_device_train_batch_size"] * recommended["gradient_accumulation_steps"]
    batch = int(values["per_device_train_batch_size"])
    accum = max(1, round(target / batch))
    if accum != values["gradient_accumulation_steps"]:
        reasons["gradient_accumulation_steps"] = _(
            "{target} (the recommended effective batch) / batch {batch} = {accum}; before the batch was given: "
            "{before}").format(target=target, batch=batch, accum=accum, before=reasons["gradient_accumulation_steps"])
        values["gradient_accumulation_steps"] = accum


def _alpha_follows_given_rank(values: dict[str, Any], sources: dict[str, str], recommended: Mapping[str, Any],
                              reasons: dict[str, str]) -> None:
    """Rule 3: a given r with a recommended alpha keeps the recommended alpha/r ratio (2 in the guide)."""
    if sources["lora_r"] not in ("given", "config") or sources["lora_alpha"] != "recommended":
        return
    if not _positive_int(values["lora_r"]):
        return  # TrainingPlan refuses it, naming the flag
    ratio = recommended["lora_alpha"] / recommended["lora_r"]
    alpha = values["lora_r"] * ratio
    alpha = int(alpha) if float(alpha).is_integer() else alpha
    if alpha != values["lora_alpha"]:
        reasons["lora_alpha"] = _("alpha = {ratio} x the given r {r} = {alpha} (the recommended alpha/r ratio "
                                  "kept)").format(ratio=f"{ratio:g}", r=values["lora_r"], alpha=fmt_value(alpha))
        values["lora_alpha"] = alpha


def _account_for_processes(values: dict[str, Any], sources: dict[str, str], reasons: dict[str, str]) -> None:
    """Rule 4: with N training processes in all (machines x processes per machine), divide a recommended/default
    accumulation by N so the effective batch stays."""
    per_node = values.get("num_processes", TrainingPlan.num_processes)
    nodes = values.get("nnodes", TrainingPlan.nnodes)
    accum = values.get("gradient_accumulation_steps", TrainingPlan.gradient_accumulation_steps)
    if not (_positive_int(per_node) and _positive_int(nodes) and _positive_int(accum)):
        return  # TrainingPlan refuses a bad value, naming the flag
    n = per_node * nodes
    if n > 1 and sources["gradient_accumulation_steps"] in ("recommended", "default") and accum % n == 0:
        values["gradient_accumulation_steps"] = accum // n
        tag = f"{n} processes" if nodes == 1 else f"{n} processes ({nodes} machines x {per_node})"
        sources["gradient_accumulation_steps"] += f" (/{tag})"  # a source tag: English, as run files keep it
        world = _("{n} processes").format(n=n) if nodes == 1 else \
            _("{n} processes ({nodes} machines x {per_node})").format(n=n, nodes=nodes, per_node=per_node)
        before = reasons.get("gradient_accumulation_steps") or _("default {value}").format(value=accum)
        reasons["gradient_accumulation_steps"] = _("{accum} / {world} = {each}, so the effective batch stays batch x "
                                                   "{accum}; {before}").format(accum=accum, world=world,
                                                                               each=accum // n, before=before)
