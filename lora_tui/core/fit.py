"""The out-of-memory fit loop: what to change so that a plan's memory estimate fits the VRAM, and nothing more.

`fit_to_vram(inv, plan, vram)`:

1. While the estimate does not fit, apply the guide's out-of-memory remedies in the guide's order
   (`advice.oom_remedies`: batch 1 with accumulation raised so the effective batch stays; r 8; q_proj/v_proj only;
   gradient checkpointing). Before a capacity cut (r, targets), a shorter max_seq_length is tried instead when it
   saves more; it is beyond the guide and labelled so, and taken from the data's token lengths when known.
2. Once it fits, every earlier cut that is not needed for the fit is undone (a halved batch goes back as far as
   the fit allows), so the plan keeps as much of the recommendation as the VRAM allows.
3. When nothing fits in 16-bit, the cuts are undone, a note says so in one line, and 4-bit loading (QLoRA) is
   offered as a step of its own when it fits: "does not fit in 16-bit; fits with --load-in-4bit at N GiB".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lora_tui.core.memory import MemoryEstimate, four_bit_problem, plan_estimate
from lora_tui.core.models.modules import ModelInventory
from lora_tui.core.plan import TrainingPlan, flag_for, fmt_value
from lora_tui.core.units import fmt_gib
from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.core.hardware.detect import HardwareReport

CAPACITY_SETTINGS = frozenset({"lora_r", "target_modules"})
"""Remedies that cut what the adapter can learn (a shorter sequence is compared against these)."""

MIN_SEQ_LENGTH = 128
"""The shortest max_seq_length the fit loop offers."""


class SeqFacts(Protocol):
    """What the fit loop reads of the data's token statistics (core.dataset.tokens.TokenStats has it)."""

    @property
    def p95(self) -> int:
        """95th-percentile length in tokens (a `median` attribute is used too when present)."""


@dataclass(frozen=True)
class FitStep:
    """One change applied on the way to fitting, with the estimate after it (and every earlier step)."""

    description: str
    """What changed and why, e.g. `--batch-size 4 -> 1, --gradient-accumulation-steps 4 -> 16 (...)`."""
    changes: dict[str, Any] = field(hash=False)
    """TrainingPlan field -> new value (empty for a closing note when nothing fits)."""
    estimate: MemoryEstimate = field(hash=False)
    """The estimate with this and every earlier step applied."""
    kind: str = "remedy"
    """`remedy` (the guide's), `sequence` (a shorter max_seq_length, beyond the guide), `tried` (what 16-bit needed
    after every remedy, undone), `four_bit` (4-bit loading) or `note` (nothing fits)."""

    def __post_init__(self) -> None:
        if not isinstance(self.estimate, MemoryEstimate):
            raise ValueError("`estimate` must be a MemoryEstimate")

    def to_dict(self) -> dict[str, Any]:
        """JSON form: description, changes, total_bytes, verdict, kind."""
        return {"description": self.description, "changes": dict(self.changes),
                "total_bytes": self.estimate.total_bytes, "verdict": self.estimate.verdict, "kind": self.kind}


@dataclass(frozen=True)
class _Change:
    """A change before it is replayed into a FitStep: the settings, why, and its kind."""

    changes: dict[str, Any]
    """TrainingPlan field -> new value."""
    why: str
    """The reason shown after the change (the guide's, or why a shorter sequence)."""
    kind: str
    """As FitStep.kind."""


class _Context:
    """The fixed inputs of one fit: model, VRAM, hardware, loss path, data lengths, FSDP shards (1: not sharded)."""

    def __init__(self, inv: ModelInventory, vram: int, hardware: HardwareReport | None, loss: str | None,
                 seq: SeqFacts | None, shards: int = 1) -> None:
        self.inv, self.vram, self.hardware, self.loss, self.seq = inv, vram, hardware, loss, seq
        self.shards = shards

    def estimate(self, plan: TrainingPlan) -> MemoryEstimate:
        est = plan_estimate(self.inv, plan, self.vram, hardware=self.hardware, loss=self.loss)
        if self.shards <= 1:
            return est
        from lora_tui.core.memory_sharded import sharded

        return sharded(est, self.shards, int(self.inv.num_layers or 1))

    def fits(self, plan: TrainingPlan) -> bool:
        return fits(self.estimate(plan))


def fits(est: MemoryEstimate) -> bool:
    """Whether an estimate fits its VRAM as the fit loop counts it: `fits` or `tight` (at most the VRAM)."""
    return est.verdict != "will_not_fit"


def _apply(plan: TrainingPlan, changes: Mapping[str, Any]) -> TrainingPlan:
    return TrainingPlan.from_dict({**plan.to_dict(), **changes}, where="memory fit")


def _replay(plan: TrainingPlan, changes: list[_Change]) -> TrainingPlan:
    for change in changes:
        plan = _apply(plan, change.changes)
    return plan


def describe(plan: TrainingPlan, changes: Mapping[str, Any]) -> str:
    """`--flag old -> new` for each changed setting."""
    return ", ".join(f"{flag_for(k)} {fmt_value(getattr(plan, k))} -> {fmt_value(v)}" for k, v in changes.items())


def shorter_sequence(plan: TrainingPlan, seq: SeqFacts | None) -> _Change | None:
    """A shorter max_seq_length to offer (beyond the guide): from the data's 95th-percentile length or median when
    known, else half the current one; None when nothing shorter makes sense."""
    current = plan.max_seq_length
    if seq is not None:
        p95 = _power_of_two_at_least(seq.p95)
        if p95 < current:
            return _Change({"max_seq_length": p95}, _("beyond the guide: the data's 95th percentile is {p95} tokens, "
                                                      "so at most 5% of the examples are cut").format(
                                                          p95=f"{seq.p95:,}"), "sequence")
        middle = getattr(seq, "median", None)
        median = _power_of_two_at_least(middle) if isinstance(middle, int) else current
        if median < current:
            return _Change({"max_seq_length": median},
                           _("beyond the guide: examples longer than {cut} tokens are cut (the data's median is "
                             "{median}, its 95th percentile {p95})").format(
                                 cut=f"{median:,}", median=f"{middle:,}", p95=f"{seq.p95:,}"), "sequence")
        return None
    half = current // 2
    if half < MIN_SEQ_LENGTH:
        return None
    return _Change({"max_seq_length": half}, _("beyond the guide: examples longer than {cut} tokens are cut (no "
                                               "token statistics for the data)").format(cut=f"{half:,}"), "sequence")


def _power_of_two_at_least(n: int) -> int:
    length = MIN_SEQ_LENGTH
    while length < n:
        length *= 2
    return length


def _reduce(ctx: _Context, plan: TrainingPlan) -> tuple[list[_Change], bool]:
    """Step 1: remedies (and at most one shorter sequence) until it fits; (changes applied, whether it fits)."""
    from lora_tui.core.advice import oom_remedies

    current, applied = plan, []
    est = ctx.estimate(current)
    seq_done = False
    while est.verdict == "will_not_fit":
        remedies = oom_remedies(current, ctx.inv)
        nxt = _Change(dict(remedies[0].changes), _why(remedies[0].key), "remedy") if remedies else None
        capacity = nxt is None or bool(CAPACITY_SETTINGS & set(nxt.changes))
        seq = shorter_sequence(current, ctx.seq) if capacity and not seq_done else None
        if seq is not None:
            seq_total = ctx.estimate(_apply(current, seq.changes)).total_bytes
            cut_total = ctx.estimate(_apply(current, nxt.changes)).total_bytes if nxt is not None else None
            if cut_total is None or seq_total < cut_total:
                nxt, seq_done = seq, True
        if nxt is None:
            break
        applied.append(nxt)
        current = _apply(current, nxt.changes)
        est = ctx.estimate(current)
    return applied, est.verdict != "will_not_fit"


def _why(remedy_key: str) -> str:
    """The guide's reason for an out-of-memory remedy (`oom.N`)."""
    from lora_tui.core.tables import guide

    return _(guide().troubles["oom"].remedies[int(remedy_key.rsplit(".", 1)[1]) - 1].why)


def _merge_batches(changes: list[_Change], plan: TrainingPlan) -> tuple[list[_Change], list[int]]:
    """Consecutive batch halvings as one change; also the batch sizes it went through (largest first)."""
    out: list[_Change] = []
    sizes = [plan.per_device_train_batch_size]
    for change in changes:
        if "per_device_train_batch_size" in change.changes and out and \
                "per_device_train_batch_size" in out[-1].changes:
            out[-1] = _Change({**out[-1].changes, **change.changes}, change.why, change.kind)
        else:
            out.append(change)
        if "per_device_train_batch_size" in change.changes:
            sizes.append(change.changes["per_device_train_batch_size"])
    return out, sizes


def _prune(ctx: _Context, plan: TrainingPlan, changes: list[_Change]) -> list[_Change]:
    """Step 2: undo every change the fit does not need (capacity cuts first), batch back as far as it fits."""
    kept, sizes = _merge_batches(changes, plan)
    order = sorted(range(len(kept) - 1), key=lambda i: (kept[i].kind != "sequence",
                                                        not (CAPACITY_SETTINGS & set(kept[i].changes))))
    dropped: set[int] = set()
    for i in order:
        trial = [c for j, c in enumerate(kept) if j != i and j not in dropped]
        if ctx.fits(_replay(plan, trial)):
            dropped.add(i)
    kept = [c for j, c in enumerate(kept) if j not in dropped]
    for i, change in enumerate(kept):
        if "per_device_train_batch_size" not in change.changes:
            continue
        for size in sizes[:-1]:
            if size <= change.changes["per_device_train_batch_size"]:
                break
            accum = -(-plan.effective_batch_size // (size * plan.world_size))
            bigger = _Change({"per_device_train_batch_size": size, "gradient_accumulation_steps": accum},
                             change.why, change.kind)
            trial = kept[:i] + [bigger] + kept[i + 1:]
            if ctx.fits(_replay(plan, trial)):
                kept = trial
                break
    return [c for c in kept if any(getattr(plan, k) != v for k, v in c.changes.items())]


def _steps(ctx: _Context, plan: TrainingPlan, changes: list[_Change]) -> list[FitStep]:
    """The changes as FitSteps, each described against the plan before it, with the estimate after it."""
    steps, current = [], plan
    for change in changes:
        text = f"{describe(current, change.changes)} ({change.why})"
        current = _apply(current, change.changes)
        steps.append(FitStep(text, dict(change.changes), ctx.estimate(current), change.kind))
    return steps


def fit_to_vram(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int, *, hardware: HardwareReport | None = None,
                loss: str | None = None, seq: SeqFacts | None = None, shards: int = 1) -> list[FitStep]:
    """The changes that make `plan`'s estimate fit `vram_bytes` (at most the VRAM: 'fits' or 'tight'), each with
    the estimate after it; empty when the plan already fits. See the module docstring for the three steps.

    `seq` is the data's token statistics (p95, median), for the shorter sequence it may offer; `hardware` and
    `loss` are passed to `memory.plan_estimate`; with `shards` above 1 the estimate is FSDP's per GPU
    (`core.memory_sharded.sharded`).
    """
    ctx = _Context(inv, vram_bytes, hardware, loss, seq, shards)
    start = ctx.estimate(plan)
    if start.verdict != "will_not_fit":
        return []
    changes, fits = _reduce(ctx, plan)
    if fits:
        return _steps(ctx, plan, _prune(ctx, plan, changes))
    worst = ctx.estimate(_replay(plan, changes))
    largest = max(worst.parts, key=lambda p: p.bytes)
    needs = dict(total=fmt_gib(worst.total_bytes), vram=fmt_gib(vram_bytes), part=largest.label.lower(),
                 size=fmt_gib(largest.bytes))
    if plan.load_in_4bit:
        return [FitStep(_("does not fit even with 4-bit loading: needs {total} of {vram} even after every remedy "
                          "(largest part: {part}, {size}); a smaller model or a GPU with more memory is needed")
                        .format(**needs), {}, start, "note")]
    problem = _("DoRA (--use-dora) cannot be combined with it") if plan.use_dora else four_bit_problem(inv)
    if problem is not None:
        return [FitStep(_("does not fit in 16-bit: needs {total} of {vram} even after every remedy (largest part: "
                          "{part}, {size}); 4-bit loading is no way out here ({problem})").format(
                              problem=problem, **needs), {}, start, "note")]
    tried = FitStep(_("16-bit needs {total} of {vram} even after every remedy (largest part: {part}, {size}); those "
                      "cuts are undone").format(**needs), {}, worst, "tried")
    return [tried, *_four_bit(ctx, plan)]


def total_text(est: MemoryEstimate) -> str:
    """An estimate's total, with `(tight)` when it is above 85% of the VRAM."""
    return _("{total} (tight)").format(total=fmt_gib(est.total_bytes)) if est.verdict == "tight" else \
        fmt_gib(est.total_bytes)


def _four_bit(ctx: _Context, plan: TrainingPlan) -> list[FitStep]:
    """Step 3: 16-bit cannot fit; 4-bit loading from the plan as it was, with remedies only if 4-bit needs them."""
    four = {"load_in_4bit": True}
    q_plan = _apply(plan, four)
    q_est = ctx.estimate(q_plan)
    if q_est.verdict != "will_not_fit":
        return [FitStep(_("does not fit in 16-bit; fits with --load-in-4bit at {total}").format(
            total=total_text(q_est)), four, q_est, "four_bit")]
    changes, fits = _reduce(ctx, q_plan)
    if not fits:
        worst = ctx.estimate(_replay(q_plan, changes))
        return [FitStep(_("does not fit in 16-bit, nor with --load-in-4bit and every remedy ({total} of {vram}); a "
                          "smaller model or a GPU with more memory is needed").format(
                              total=fmt_gib(worst.total_bytes), vram=fmt_gib(ctx.vram)), {},
                        ctx.estimate(plan), "note")]
    pruned = _prune(ctx, q_plan, changes)
    final = ctx.estimate(_replay(q_plan, pruned))
    head = FitStep(_("does not fit in 16-bit; fits with --load-in-4bit at {total} with the change(s) below").format(
        total=total_text(final)), four, q_est, "four_bit")
    return [head, *_steps(ctx, q_plan, pruned)]
