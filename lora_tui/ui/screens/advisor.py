"""Step 4, Advisor: recommended settings with reasons, each editable; the per-layer LoRA math and the memory
estimate update live as r, alpha or the targets change."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, RadioButton, RadioSet, Static

from lora_tui.core.plan import TrainingPlan, flag_for, parse_target_modules
from lora_tui.errors import UserError
from lora_tui.ui.format import fmt_bytes, fmt_count, fmt_value
from lora_tui.ui.messages import Recommended
from lora_tui.ui.screens.base import WizardScreen
from lora_tui.ui.state import pattern_of

EDITABLE: tuple[tuple[str, str], ...] = (
    ("lora_r", "r"),
    ("lora_alpha", "alpha"),
    ("lora_dropout", "dropout"),
    ("learning_rate", "learning rate"),
    ("per_device_train_batch_size", "batch size"),
    ("gradient_accumulation_steps", "accumulation"),
    ("num_train_epochs", "epochs"),
    ("warmup_ratio", "warmup ratio"),
    ("weight_decay", "weight decay"),
    ("max_seq_length", "max seq length"),
    ("target_modules", "targets"),
    ("gradient_checkpointing", "grad checkpointing"),
)
"""The settings shown on the advisor, (plan field, label), in the order a person reads them."""

STYLES = ("conservative", "standard", "aggressive")
"""The guide's alpha/r styles."""

VERDICT_STYLE = {"fits": "bold green", "tight": "bold yellow", "will_not_fit": "bold red", "unknown": "bold"}
"""How each memory verdict is coloured."""


def parse_setting(name: str, text: str) -> Any:
    """A typed value for a plan field from what was typed (ValueError/UserError when it is not one)."""
    text = text.strip()
    if name == "target_modules":
        return parse_target_modules(text)
    if name == "gradient_checkpointing":
        lowered = text.lower()
        if lowered in ("yes", "true", "on", "1"):
            return True
        if lowered in ("no", "false", "off", "0"):
            return False
        raise ValueError("type yes or no")
    default = getattr(TrainingPlan(), name)
    if isinstance(default, int) and not isinstance(default, bool) and name != "lora_alpha":
        return int(text)
    return float(text)


class AdvisorScreen(WizardScreen):
    """The advisor: values and reasons, scaling, per-layer parameters and the memory estimate."""

    STEP = "advisor"
    BINDINGS = [
        Binding("ctrl+f", "fit", "Fit to VRAM", tooltip="Apply the memory remedies until the plan fits", id="fit"),
        Binding("ctrl+e", "reset", "Reset to advice", tooltip="Drop your edits, take the recommendation",
                id="reset"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._inputs_key: tuple[Any, ...] | None = None
        self._reasons: dict[str, str] = {}
        self._fit_changes: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        """Settings (left) and the math and memory (right; below on a narrow terminal)."""
        with VerticalScroll(id="body"):
            with Horizontal(id="advisor-cols"):
                with Vertical(classes="column", id="settings"):
                    with RadioSet(id="style"):
                        for key in STYLES:
                            yield RadioButton(f"{key}", value=self.state.style == key, name=key)
                    for name, label in EDITABLE:
                        with Horizontal(classes="setting"):
                            yield Static(label, classes="setting-name")
                            yield Input(fmt_value(getattr(self.state.plan, name)), id=f"set-{name}",
                                        classes="setting-value", tooltip=flag_for(name))
                        yield Static("", id=f"why-{name}", classes="setting-why")
                    yield Static("", id="notes", classes="dim")
                with Vertical(classes="column", id="math"):
                    yield Static("", id="scaling")
                    yield DataTable(id="layers", cursor_type="none", zebra_stripes=True)
                    yield Static("", id="totals")
                    yield DataTable(id="memory", cursor_type="none", zebra_stripes=True)
                    yield Static("", id="verdict")
                    yield Static("", id="remedies")

    def on_mount(self) -> None:
        """Set up the tables."""
        super().on_mount()
        self.query_one("#layers", DataTable).add_columns("module", "in -> out", "layers", "original", "LoRA",
                                                         "share")
        self.query_one("#memory", DataTable).add_columns("part", "size", "detail")

    def on_screen_resume(self) -> None:
        """Ask for a new recommendation when an input changed; else just refresh the figures."""
        self.clear_error()
        key = self._recommend_key()
        if key != self._inputs_key:
            self._inputs_key = key
            self.run_recommend()
        self._fill_inputs()
        self.refresh_figures()

    def _recommend_key(self) -> tuple[Any, ...]:
        s = self.state
        inv_id = getattr(s.inventory, "model_id", None)
        examples = getattr(s.data_report, "examples", None)
        return (s.plan.task, examples, s.vram_bytes, inv_id, s.style)

    @work(thread=True, exclusive=True, exit_on_error=False, group="recommend")
    def run_recommend(self) -> None:
        """Ask the core advisor for values and reasons."""
        from lora_tui.core.recommend import recommend

        s = self.state
        self.post_message(Recommended(recommend(task=s.plan.task, vram_bytes=s.vram_bytes, inventory=s.inventory,
                                                style=s.style, data_report=s.data_report)))

    def on_recommended(self, message: Recommended) -> None:
        """Take the values for every field not edited by hand; show every reason."""
        rec = message.recommendation
        self.state.apply_recommendation(rec.values)
        self._reasons = dict(rec.reasons)
        self.query_one("#notes", Static).update("\n".join(rec.notes))
        self._fill_inputs()
        self.refresh_figures()

    def _fill_inputs(self) -> None:
        plan = self.state.plan
        for name, _label in EDITABLE:
            field = self.query_one(f"#set-{name}", Input)
            try:
                same = parse_setting(name, field.value) == getattr(plan, name)
            except (ValueError, UserError):
                same = False
            if not same:
                field.value = fmt_value(getattr(plan, name))
            field.remove_class("-invalid")
            self._show_reason(name)

    def _show_reason(self, name: str) -> None:
        source = self.state.sources.get(name, "default")
        reason = "set by you" if name in self.state.edited else self._reasons.get(name, f"{source} value")
        self.query_one(f"#why-{name}", Static).update(Text(reason, style="dim italic"))

    @on(Input.Changed, ".setting-value")
    def _setting_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("set-")
        try:
            value = parse_setting(name, event.value)
            if value == getattr(self.state.plan, name):
                return
            self.state.update("given", **{name: value})
        except (ValueError, UserError) as exc:
            event.input.add_class("-invalid")
            self.show_error(f"{name} ({flag_for(name)}): {exc}" if not isinstance(exc, UserError) else str(exc))
            return
        event.input.remove_class("-invalid")
        self.clear_error()
        if name == "target_modules":
            self.state.target_pattern = pattern_of(self.state.plan.target_modules)
        self._show_reason(name)
        self.refresh_figures()

    @on(RadioSet.Changed, "#style")
    def _style_changed(self, event: RadioSet.Changed) -> None:
        style = event.pressed.name or "standard"
        if style == self.state.style:
            return
        self.state.style = style
        self.state.edited.discard("lora_alpha")
        self._inputs_key = self._recommend_key()
        self.run_recommend()

    def action_reset(self) -> None:
        """Forget the hand edits and take the recommendation again."""
        self.state.edited.clear()
        self._inputs_key = self._recommend_key()
        self.run_recommend()

    def action_fit(self) -> None:
        """Apply the memory remedies that make the plan fit the VRAM."""
        if not self._fit_changes:
            self.notify("Nothing to change: the plan fits (or no GPU memory is known).")
            return
        self.state.update("given", **self._fit_changes)
        self._fill_inputs()
        self.refresh_figures()

    # ---- the live figures -------------------------------------------------------------------------------

    def refresh_figures(self) -> None:
        """Recompute the LoRA math and the memory estimate for the current plan (pure, fast core calls)."""
        inv = self.state.inventory
        if inv is None:
            self.query_one("#scaling", Static).update("No model inventory: choose a model on the Task step.")
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
            ("Scaling ", "bold"), f"{ratio} = {fmt_value(plan.lora_alpha)}/{plan.lora_r} = {math.scaling:.3g}  ",
            (f"({math.scaling_label})", "bold cyan")))
        table = self.query_one("#layers", DataTable)
        table.clear()
        for row in math.rows:
            table.add_row(row.name, f"{row.in_features} -> {row.out_features}", str(row.count),
                          fmt_count(row.original_params), fmt_count(row.lora_params), f"{row.share:.2%}")
        totals = Text.assemble(
            ("Trainable ", "bold"), f"{math.trainable_params:,} of {math.total_params:,} ",
            (f"({math.trainable_pct:.3f}%)", "bold"),
            f"  adapter file ≈ {fmt_bytes(math.adapter_bytes_fp32)} fp32")
        if math.unmatched:
            totals.append(f"\nNo module matches: {', '.join(math.unmatched)}", style="bold red")
        self.query_one("#totals", Static).update(totals)

    def _show_memory(self, inv: Any, plan: TrainingPlan) -> None:
        from lora_tui.core.memory import fit_to_vram, plan_estimate

        vram = self.state.vram_bytes
        est = plan_estimate(inv, plan, vram)
        table = self.query_one("#memory", DataTable)
        table.clear()
        for part in est.parts:
            table.add_row(part.label, fmt_bytes(part.bytes), part.detail)
        verdict = Text.assemble(("Peak memory ", "bold"), f"≈ {fmt_bytes(est.total_bytes)}")
        if vram:
            verdict.append(f" of {fmt_bytes(vram)}: ")
            verdict.append(est.verdict.replace("_", " "), style=VERDICT_STYLE.get(est.verdict, "bold"))
        else:
            verdict.append("  (no GPU: the figure is what a GPU would need)", style="dim")
        self.query_one("#verdict", Static).update(verdict)
        self._fit_changes = {}
        remedies = Text()
        if vram and est.verdict == "will_not_fit":
            steps = fit_to_vram(inv, plan, vram)
            remedies.append("Remedies (ctrl+f applies them):\n", style="bold")
            for step in steps:
                self._fit_changes.update(step.changes)
                remedies.append(f"  • {step.description} -> {fmt_bytes(step.estimate.total_bytes)} "
                                f"({step.estimate.verdict.replace('_', ' ')})\n")
        self.query_one("#remedies", Static).update(remedies)
