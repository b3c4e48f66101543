"""Step 5, Review and launch: the equivalent command line, the run file, the output directory, the evaluation
split, launch."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Static

from lora_tui.core import runs
from lora_tui.core.plan import TrainingPlan, held_out
from lora_tui.core.resolve import ResolvedPlan
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, english, pgettext
from lora_tui.ui.field_errors import field_message
from lora_tui.ui.format import display_path, fmt_value
from lora_tui.ui.messages import RunLaunched
from lora_tui.ui.screens.base import WizardScreen

SUMMARY_FIELDS = ("model", "task", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate",
                  "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
                  "max_seq_length", "max_steps")
"""Plan fields listed in the review summary."""


def eval_split_text(split: float, examples: int | None, reason: str | None) -> str:
    """"5% (12 of 240 examples held out)", or "none: ..." saying why no split is held out."""
    if split <= 0:
        return _("none: {why}").format(why=reason or _("turned off (set it above 0 to evaluate)"))
    if examples is None:
        return _("{share} of the examples (the data is not measured yet)").format(share=f"{split:.1%}")
    return _("{share} ({held} of {examples} examples held out)").format(share=f"{split:.1%}",
                                                                       held=held_out(examples, split),
                                                                       examples=examples)


class ReviewScreen(WizardScreen):
    """See the run as a command line, save it, pick the output directory and launch."""

    STEP = "review"
    BINDINGS = [
        Binding("ctrl+l", "launch", N_("Launch"), tooltip=N_("Start training in a background process"), id="launch"),
        Binding("ctrl+s", "save", N_("Save run file"), tooltip=N_("Write the run file (TOML)"), id="save"),
        Binding("ctrl+y", "copy", N_("Copy command"), tooltip=N_("Copy the command line to the clipboard"),
                id="copy"),
        Binding("f6", "sweep", N_("Sweep"), tooltip=N_("Run this plan over a grid of settings, one run after "
                                                       "another"), id="sweep"),
    ]

    def compose_body(self) -> ComposeResult:
        """Summary, command line, output directory and run file fields, buttons."""
        with VerticalScroll(id="body"):
            yield Static("", id="review-summary")
            yield Static(_("Evaluation split (fraction held out, e.g. 0.05; 0 = off)"), classes="label")
            yield Input("", id="review-eval-split")
            yield Static("", id="review-eval-status")
            yield Static(_("Equivalent command (ctrl+y copies it):"), classes="label")
            yield Static("", id="review-cmd")
            yield Static(_("Output directory"), classes="label")
            yield Input("", id="output")
            yield Static("", id="output-status")
            with Horizontal(classes="row"):
                yield Checkbox(_("Overwrite it"), id="overwrite")
                yield Checkbox(_("Resume its last checkpoint"), id="resume")
            yield Static(_("Run file"), classes="label")
            with Horizontal(classes="row"):
                yield Input("", id="runfile")
                yield Button(_("Save"), id="save-btn")
                yield Button(_("Launch"), id="launch-btn", variant="primary")

    def on_screen_resume(self) -> None:
        """Show the plan as it is now."""
        self.clear_error()
        plan = self.state.plan
        self.query_one("#output", Input).value = plan.output
        self.query_one("#runfile", Input).value = str(Path(plan.output).with_suffix(".toml"))
        self.query_one("#review-eval-split", Input).value = fmt_value(plan.eval_split)
        self._show_plan()
        self._check_output()

    def _show_plan(self) -> None:
        plan = self.state.plan
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="bold", no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")  # a long value wraps in its own column
        for name in SUMMARY_FIELDS:
            value = getattr(plan, name)
            source = _("you") if self.state.sources.get(name) == "given" else pgettext(
                "value source", self.state.sources.get(name, "default"))
            grid.add_row(name, Text.assemble(fmt_value(value) if value is not None else "-", (f"  ({source})", "dim")))
        sample = _("  (built-in sample)") if self.state.plan.data is None else ""
        grid.add_row("data", Text.assemble(display_path(self.state.data_path), (sample, "dim")))
        grid.add_row(_("effective batch"), str(plan.effective_batch_size))
        self.query_one("#review-summary", Static).update(grid)
        self.query_one("#review-cmd", Static).update(self.command_line())
        self._show_eval()

    def _show_eval(self) -> None:
        """What the evaluation split holds out, and what the run keeps and stops on because of it."""
        plan, state = self.state.plan, self.state
        examples = state.data_report.examples if state.data_report is not None else None
        reason = state.reasons.get("eval_split") if "eval_split" not in state.edited else None
        text = Text(eval_split_text(plan.eval_split, examples, reason))
        if plan.eval_split > 0:
            stop = _("after {count} evaluations without improvement").format(count=plan.early_stopping) \
                if plan.early_stopping else _("never")
            text.append(_("\nevaluated every {steps} steps; keeps the {keep} checkpoint; stops early: {stop}").format(
                steps=plan.save_steps, keep=pgettext("keep", plan.keep), stop=stop), style="dim")
        self.query_one("#review-eval-status", Static).update(text)

    @on(Input.Changed, "#review-eval-split")
    def _eval_split_changed(self, event: Input.Changed) -> None:
        try:
            value = TrainingPlan.parse_field("eval_split", event.value)
            if value != self.state.plan.eval_split:
                self.state.update(eval_split=value)
        except UserError as exc:
            event.input.add_class("-invalid")
            self.show_error(field_message(str(exc)))
            return
        event.input.remove_class("-invalid")
        self.clear_error()
        self._show_plan()

    def command_line(self) -> str:
        """`lora-tui train ...` reproducing the plan (settings equal to the defaults left out)."""
        return self.state.plan.command_line(defaults=TrainingPlan(), keep=("output",))

    @on(Input.Submitted, "#output")
    @on(Input.Changed, "#output")
    def _output_changed(self, event: Input.Changed | Input.Submitted) -> None:
        value = event.value.strip()
        if value and value != self.state.plan.output:
            self.state.update(output=value)
            self.query_one("#review-cmd", Static).update(self.command_line())
        self._check_output()

    @on(Checkbox.Changed)
    def _box_changed(self, event: Checkbox.Changed) -> None:
        if event.value:  # the two are exclusive
            other = "#resume" if event.checkbox.id == "overwrite" else "#overwrite"
            self.query_one(other, Checkbox).value = False
        self._check_output()

    def _choice(self) -> tuple[bool, bool]:
        return self.query_one("#overwrite", Checkbox).value, self.query_one("#resume", Checkbox).value

    def _check_output(self) -> str | None:
        """What launching would do with the output directory (`new`, `resume`, `overwrite`), or None."""
        overwrite, resume = self._choice()
        out = self.query_one("#output-status", Static)
        try:
            what = runs.check_output_dir(self.state.plan.output, resume=resume, overwrite=overwrite)
        except UserError as exc:
            out.update(Text(f"✘ {exc}", style="bold red"))
            return None
        text = {"new": _("✔ a new run directory"), "resume": _("✔ continues from the last complete checkpoint"),
                "overwrite": _("! the directory's contents will be replaced")}[what]
        out.update(Text(text, style="bold yellow" if what == "overwrite" else "bold green"))
        return what

    @on(Button.Pressed, "#save-btn")
    def action_sweep(self) -> None:
        """Ask for a grid and start a sweep of this plan in the background; then show the runs."""
        from lora_tui.ui.screens.sweep_dialog import SweepDialog

        def started(result: tuple[Path, int] | None) -> None:
            if result is not None:
                self.notify(f"Sweep started in {display_path(result[0])} (pid {result[1]}); its runs appear "
                            "here as they start, results.csv at the end.", title="Sweep", timeout=10)
                self.tui.action_runs()

        self.app.push_screen(SweepDialog(self.state.plan, self.tui.runs_root), started)

    def action_save(self) -> None:
        """Write the run file; `lora-tui train --config FILE` runs it."""
        path = Path(self.query_one("#runfile", Input).value.strip() or "lora-run.toml").expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.state.plan.to_toml(self.state.sources), encoding="utf-8")
        except OSError as exc:
            self.show_error(_("Run file {path}: cannot write ({why}); choose another path").format(
                path=path, why=exc.strerror))
            return
        self.clear_error()
        self.notify(_("Saved {path}\nRun it with: lora-tui train --config {path}").format(path=path),
                    title=_("Run file"))

    def action_copy(self) -> None:
        """Copy the command line to the clipboard (OSC 52: works over SSH in most terminals)."""
        self.app.copy_to_clipboard(self.command_line())
        self.notify(_("Command line copied to the clipboard."))

    @on(Button.Pressed, "#launch-btn")
    def action_launch(self) -> None:
        """Start the run (refused inline when the output directory is in use or the data has problems)."""
        report = self.state.data_report
        if report is not None and not report.ok:
            self.show_error(_("Data: {count} problem(s) in {path}; fix them first (Data step)").format(
                count=report.issue_count, path=report.path))
            return
        if self._check_output() is None:
            self.show_error(_("Output: choose another directory, or tick overwrite/resume"))
            return
        self.clear_error()
        overwrite, resume = self._choice()
        self.query_one("#launch-btn", Button).disabled = True
        self.launch(self._resolved_for_run_files(), overwrite, resume)

    def _resolved_for_run_files(self) -> ResolvedPlan:
        """The plan as resolved here, its reasons in English: run files are the same whatever the language."""
        from lora_tui.core.resolve import resolve
        from lora_tui.i18n import language

        if language() == "en":
            return self.state.resolved
        with english():
            return resolve(self.state.given, self.state.inputs())

    @work(thread=True, exclusive=True, exit_on_error=False, group="launch")
    def launch(self, resolved: ResolvedPlan, overwrite: bool, resume: bool) -> None:
        """Start `lora-tui train` in the background through the app's launcher (the plan as resolved here)."""
        launched = self.tui.launcher(resolved, overwrite=overwrite, resume=resume)
        self.post_message(RunLaunched(Path(launched.run_dir), getattr(launched, "pid", None)))

    def on_run_launched(self, message: RunLaunched) -> None:
        """Open the run's monitor."""
        self.query_one("#launch-btn", Button).disabled = False
        self.tui.open_monitor(message.run_dir)

    def show_error(self, message: str) -> None:
        """Inline error (and re-enable the launch button after a failed launch)."""
        super().show_error(message)
        self.query_one("#launch-btn", Button).disabled = False
