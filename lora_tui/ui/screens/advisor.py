"""Step 4, Advisor: recommended settings with reasons, each editable; which advice fills them (the guide's tables
or current LoRA practice); the per-layer LoRA math and the memory estimate update live as r, alpha or the targets
change. With more than one process the strategy (ddp or fsdp) is one of the settings, with its reason, and the
memory is what one GPU holds under it (FSDP's share: `core.memory_sharded`, as resolve's choice counts it), its
remedies fitting that figure."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, RadioButton, RadioSet, Static

from lora_tui.core.plan import TrainingPlan, flag_for
from lora_tui.core.recommend import verdict_words
from lora_tui.core.tables import style_name
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, pgettext
from lora_tui.ui.format import fmt_bytes, fmt_count, fmt_value
from lora_tui.ui.screens.base import WizardScreen
from lora_tui.ui.state import ADVISED

EDITABLE: tuple[tuple[str, str], ...] = (
    ("lora_r", N_("r")),
    ("lora_alpha", N_("alpha")),
    ("lora_dropout", N_("dropout")),
    ("learning_rate", N_("learning rate")),
    ("per_device_train_batch_size", N_("batch size")),
    ("gradient_accumulation_steps", N_("accumulation")),
    ("num_train_epochs", N_("epochs")),
    ("warmup_ratio", N_("warmup ratio")),
    ("weight_decay", N_("weight decay")),
    ("max_seq_length", N_("max seq length")),
    ("target_modules", N_("targets")),
    ("gradient_checkpointing", N_("grad checkpointing")),
    ("load_in_4bit", N_("4-bit base (QLoRA)")),
    ("eval_split", N_("eval split")),
    ("save_steps", N_("save+eval every")),
    ("keep", N_("keep (best/last)")),
    ("early_stopping", N_("early stopping")),
    ("distributed", N_("ddp or fsdp")),
)
"""The settings shown on the advisor, (plan field, label in English: `_()` shows it), in the order a person
reads them."""

MULTI_PROCESS = frozenset({"distributed"})
"""Settings shown only for a run on more than one process."""

STYLES = ("conservative", "standard", "aggressive")
"""The guide's alpha/r styles."""

ADVICE_LABELS = (("guide", N_("the guide's tables")), ("practice", N_("current LoRA practice")))
"""The advice styles (`core.sources.ADVICE`) as the Advisor's switch names them."""

VERDICT_STYLE = {"fits": "bold green", "tight": "bold yellow", "will_not_fit": "bold red", "unknown": "bold"}
"""How each memory verdict is coloured."""


class AdvisorScreen(WizardScreen):
    """The advisor: values and reasons, scaling, per-layer parameters and the memory estimate."""

    STEP = "advisor"
    BINDINGS = [
        Binding("ctrl+g", "fit", N_("Fit to VRAM"), tooltip=N_("Apply the memory remedies until the plan fits"),
                id="fit"),
        Binding("ctrl+o", "reset", N_("Reset to advice"), tooltip=N_("Drop your edits, take the recommendation"),
                id="reset"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._fit_changes: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        """Settings (left) and the math and memory (right; below on a narrow terminal)."""
        with VerticalScroll(id="body"):
            with Horizontal(id="advisor-cols"):
                with Vertical(classes="column", id="settings"):
                    with RadioSet(id="advisor-advice", tooltip=_("Which advice fills the settings you leave alone; "
                                                                 "each reason shows the other's value where they "
                                                                 "differ")):
                        for key, label in ADVICE_LABELS:
                            yield RadioButton(_(label), value=self.state.plan.advice == key, name=key)
                    with RadioSet(id="style"):
                        for key in STYLES:
                            yield RadioButton(style_name(key), value=self.state.style == key, name=key)
                    for name, label in EDITABLE:
                        with Horizontal(classes="setting", id=f"row-{name}"):
                            yield Static(_(label), classes="setting-name")
                            yield Input(fmt_value(getattr(self.state.plan, name)), id=f"set-{name}",
                                        classes="setting-value", tooltip=flag_for(name))
                        yield Static("", id=f"why-{name}", classes="setting-why")
                    yield Static("", id="notes", classes="dim")
                with Vertical(classes="column", id="math"):
                    yield Static("", id="scaling")
                    yield DataTable(id="layers", cursor_type="none", zebra_stripes=True)
                    yield Static("", id="totals")
                    yield Static("", id="memory")
                    yield Static("", id="verdict")
                    yield Static("", id="remedies")

    def on_mount(self) -> None:
        """Set up the tables."""
        super().on_mount()
        self.query_one("#layers", DataTable).add_columns(_("module"), _("in -> out"), _("layers"), _("original"),
                                                         "LoRA", _("share"))

    def on_screen_resume(self) -> None:
        """Show the plan as resolved now (the data, task, model or hardware may have changed)."""
        self.clear_error()
        self._show_plan()

    def _show_plan(self) -> None:
        for button in self.query("#advisor-advice RadioButton").results(RadioButton):
            if button.value != (button.name == self.state.plan.advice):
                button.value = button.name == self.state.plan.advice
        self._fill_inputs()
        self.refresh_figures()

    def _fill_inputs(self) -> None:
        """Every setting's value and reason, and the notes, as resolved now (an edit may change the strategy)."""
        self.query_one("#notes", Static).update("\n".join(self.state.resolved.notes))
        plan = self.state.plan
        for name in MULTI_PROCESS:
            shown = plan.world_size > 1
            self.query_one(f"#row-{name}").display = shown
            self.query_one(f"#why-{name}").display = shown
        for name, _label in EDITABLE:
            field = self.query_one(f"#set-{name}", Input)
            try:
                same = TrainingPlan.parse_field(name, field.value) == getattr(plan, name)
            except UserError:
                same = False
            if not same:
                field.value = fmt_value(getattr(plan, name))
            field.remove_class("-invalid")
            self._show_reason(name)

    def _show_reason(self, name: str) -> None:
        if name in self.state.edited and name not in self.state.reasons:
            reason = _("set by you")
        else:
            reason = self.state.reasons[name] if name in self.state.reasons else _("{source} value").format(
                source=pgettext("value source", self.state.sources.get(name, "default")))
        self.query_one(f"#why-{name}", Static).update(Text(reason, style="dim italic"))

    @on(Input.Changed, ".setting-value")
    def _setting_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("set-")
        try:
            value = TrainingPlan.parse_field(name, event.value)
            if value == getattr(self.state.plan, name):
                return  # the value shown is the resolved one: not an edit
            self.state.update(**{name: value})
        except UserError as exc:
            event.input.add_class("-invalid")
            self.show_error(str(exc))
            return
        event.input.remove_class("-invalid")
        self.clear_error()
        self._fill_inputs()  # derived values (alpha for a given r, accumulation for a given batch) follow
        self.refresh_figures()

    @on(RadioSet.Changed, "#style")
    def _style_changed(self, event: RadioSet.Changed) -> None:
        style = event.pressed.name or "standard"
        if style == self.state.style:
            return
        self.state.set_inputs(style=style)
        self.state.forget("lora_alpha")
        self._show_plan()

    @on(RadioSet.Changed, "#advisor-advice")
    def _advice_changed(self, event: RadioSet.Changed) -> None:
        advice = event.pressed.name or "guide"
        if advice == self.state.plan.advice:
            return
        self.state.update(advice=advice)
        self._show_plan()

    def action_reset(self) -> None:
        """Forget the hand edits and take the recommendation again."""
        self.state.forget(*ADVISED)
        self._show_plan()

    def action_fit(self) -> None:
        """Apply the memory remedies that make the plan fit the VRAM."""
        if not self._fit_changes:
            self.notify(_("Nothing to change: the plan fits (or no GPU memory is known)."))
            return
        self.state.update(**self._fit_changes)
        self._show_plan()

    # ---- the live figures -------------------------------------------------------------------------------

    def refresh_figures(self) -> None:
        """Recompute the LoRA math and the memory estimate for the current plan (pure, fast core calls)."""
        inv = self.state.inventory
        if inv is None:
            self.query_one("#scaling", Static).update(_("No model inventory: choose a model on the Task step."))
            return
        plan = self.state.plan
        try:
            self._show_math(inv, plan)
            self._show_memory(inv, plan)
        except UserError as exc:
            self.show_error(str(exc))

    def _show_math(self, inv: Any, plan: TrainingPlan) -> None:
        from lora_tui.core.lora_math import compute_lora_math

        math = compute_lora_math(inv, r=plan.lora_r, lora_alpha=plan.lora_alpha,
                                 target_modules=plan.target_modules, use_dora=plan.use_dora,
                                 use_rslora=plan.use_rslora)
        ratio = "alpha/sqrt(r)" if plan.use_rslora else "alpha/r"
        self.query_one("#scaling", Static).update(Text.assemble(
            (_("Scaling "), "bold"), f"{ratio} = {fmt_value(plan.lora_alpha)}/{plan.lora_r} = {math.scaling:.3g}  ",
            (f"({math.scaling_label})", "bold cyan")))
        table = self.query_one("#layers", DataTable)
        table.clear()
        for row in math.rows:
            table.add_row(row.name, f"{row.in_features} -> {row.out_features}", str(row.count),
                          fmt_count(row.original_params), fmt_count(row.lora_params), f"{row.share:.2%}")
        totals = Text.assemble(
            (_("Trainable "), "bold"), _("{trainable} of {total} ").format(
                trainable=f"{math.trainable_params:,}", total=f"{math.total_params:,}"),
            (f"({math.trainable_pct:.3f}%)", "bold"),
            _("  adapter file ≈ {size} fp32").format(size=fmt_bytes(math.adapter_bytes_fp32)))
        if math.unmatched:
            totals.append(_("\nNo module matches: {names}").format(names=", ".join(math.unmatched)),
                          style="bold red")
        self.query_one("#totals", Static).update(totals)

    def _show_memory(self, inv: Any, plan: TrainingPlan) -> None:
        from lora_tui.core.fit import fit_to_vram
        from lora_tui.core.memory_sharded import fsdp_shards, per_gpu_text, plan_memory

        vram = self.state.vram_bytes
        report = self.state.data_report
        memory = plan_memory(inv, plan, vram, lengths=report.token_stats if report is not None else None)
        est = memory.one_gpu  # what one GPU holds: the whole estimate under DDP
        self.query_one("#memory", Static).update(memory_table(est.parts))
        verdict = Text.assemble((_("Peak memory per GPU ") if plan.world_size > 1 else _("Peak memory "), "bold"),
                                f"≈ {fmt_bytes(est.total_bytes)}")
        if vram:
            verdict.append(_(" of {vram}: ").format(vram=fmt_bytes(vram)))
            verdict.append(verdict_words(est.verdict), style=VERDICT_STYLE.get(est.verdict, "bold"))
        else:
            verdict.append(_("  (no GPU: the CPU run's memory)"), style="dim")
        verdict.append(f"\n{est.settings.get('precision_reason', '')}", style="dim")
        verdict.append(f"\n{est.settings.get('seq_basis', '')}", style="dim")
        if memory.per_gpu:
            verdict.append(f"\n{per_gpu_text(memory.per_gpu)}", style="dim")
        self.query_one("#verdict", Static).update(verdict)
        self._fit_changes = {}
        remedies = Text()
        if vram and est.verdict == "will_not_fit":
            steps = fit_to_vram(inv, plan, vram, shards=fsdp_shards(plan))
            remedies.append(_("Remedies (ctrl+g applies them):\n"), style="bold")
            for step in steps:
                self._fit_changes.update(step.changes)
                remedies.append(f"  • {step.description} -> {fmt_bytes(step.estimate.total_bytes)} "
                                f"({verdict_words(step.estimate.verdict)})\n")
        self.query_one("#remedies", Static).update(remedies)


def memory_table(parts: Any) -> Table:
    """The estimate's parts as a table whose detail column wraps (nothing is cut at 80 or 120 columns)."""
    table = Table(expand=True, box=None, header_style="bold", padding=(0, 1))
    table.add_column(_("part"), ratio=3, overflow="fold")
    table.add_column(_("size"), justify="right", no_wrap=True)
    table.add_column(_("detail"), ratio=4, overflow="fold")
    for part in parts:
        table.add_row(part.label, fmt_bytes(part.bytes), part.detail)
    return table
