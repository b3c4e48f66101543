"""Step 5, Review and launch: the equivalent command line, the run file, the output directory, the evaluation
split, the machines and processes (with the command for every machine), launch."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Collapsible, Input, Static

from lora_tui.core import distributed, runs
from lora_tui.core.plan import TrainingPlan, flag_for, held_out
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

NODE_FIELDS: tuple[tuple[str, str], ...] = (
    ("nnodes", N_("machines")),
    ("num_processes", N_("processes/machine")),
    ("node_rank", N_("this node's rank")),
    ("master_addr", N_("node 0 address")),
    ("master_port", N_("node 0 port")),
    ("distributed", N_("ddp or fsdp")),
)
"""The machines-and-processes settings, (plan field, label in English: `_()` shows it); an empty field takes the
recommendation (or default) again."""


def node_command_lines(plan: TrainingPlan) -> list[str]:
    """The `lora-tui train` command of every machine, as the dry run prints them (`distributed.node_commands` of
    the plan's full command line, so every node resolves the same plan whatever it detects)."""
    return distributed.node_commands(plan, plan.command_line())


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

    DEFAULT_CSS = """
    #review-nodes { margin-top: 1; padding-bottom: 0; }
    """

    def compose_body(self) -> ComposeResult:
        """Summary, machines and processes, command line, output directory and run file fields, buttons."""
        with VerticalScroll(id="body"):
            yield Static("", id="review-summary")
            yield Static(_("Evaluation split (fraction held out, e.g. 0.05; 0 = off)"), classes="label")
            yield Input("", id="review-eval-split")
            yield Static("", id="review-eval-status")
            with Collapsible(title="", collapsed=True, id="review-nodes"):
                for name, label in NODE_FIELDS:
                    with Horizontal(classes="setting"):
                        yield Static(_(label), classes="setting-name")
                        yield Input("", id=f"node-{name}", classes="setting-value node-value", tooltip=flag_for(name))
                yield Static("", id="why-distributed", classes="setting-why")
            yield Static("", id="review-cmd-label", classes="label")
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
        self._fill_nodes()
        self.query_one("#review-nodes", Collapsible).collapsed = plan.world_size <= 1
        self._show_plan()
        self._check_output()

    def _show_plan(self) -> None:
        plan = self.state.plan
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="bold", no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")  # a long value wraps in its own column
        for name in SUMMARY_FIELDS:
            value = getattr(plan, name)
            tag = self.state.sources.get(name, "default").split(" (")[0]  # "recommended (/4 processes)": its reason
            source = _("you") if tag == "given" else pgettext("value source", tag)
            grid.add_row(name, Text.assemble(fmt_value(value) if value is not None else "-", (f"  ({source})", "dim")))
        sample = _("  (built-in sample)") if self.state.plan.data is None else ""
        grid.add_row("data", Text.assemble(display_path(self.state.data_path), (sample, "dim")))
        grid.add_row(_("effective batch"), str(plan.effective_batch_size))
        self.query_one("#review-summary", Static).update(grid)
        self._show_commands()
        self._show_nodes()
        self._show_eval()

    def _show_commands(self) -> None:
        """The equivalent command; on several machines the command of every machine instead."""
        plan = self.state.plan
        label, cmd = self.query_one("#review-cmd-label", Static), self.query_one("#review-cmd", Static)
        if plan.nnodes <= 1:
            label.update(_("Equivalent command (ctrl+y copies it):"))
            cmd.update(self.command_line())
            return
        label.update(_("Commands, one per machine (start node 0 first; ctrl+y copies this machine's):"))
        cmd.update("\n\n".join(_("node {rank}: {command}").format(rank=rank, command=command)
                             for rank, command in enumerate(node_command_lines(plan))))

    def _show_nodes(self) -> None:
        """The section's title (machines x processes, strategy) and why the strategy."""
        plan, state = self.state.plan, self.state
        self.query_one("#review-nodes", Collapsible).title = _(
            "Machines and processes: {nodes} x {processes} ({strategy})").format(
                nodes=plan.nnodes, processes=plan.num_processes, strategy=plan.distributed)
        if "distributed" in state.edited and "distributed" not in state.reasons:
            why = _("set by you")
        else:
            why = state.reasons.get("distributed", "")
        self.query_one("#why-distributed", Static).update(Text(why, style="dim italic"))

    def _fill_nodes(self, *, keep: Input | None = None) -> None:
        """Show the plan's node settings (not in `keep`, the field being typed in), none marked invalid."""
        plan = self.state.plan
        for name, _label in NODE_FIELDS:
            field = self.query_one(f"#node-{name}", Input)
            value = getattr(plan, name)
            if field is not keep and field.value != ("" if value is None else fmt_value(value)):
                field.value = "" if value is None else fmt_value(value)
            field.remove_class("-invalid")

    @on(Input.Changed, ".node-value")
    def _node_changed(self, event: Input.Changed) -> None:
        problem = self._apply_nodes(event.input)
        if problem is not None:
            self.show_error(problem)
            return
        self.clear_error()
        self._fill_nodes(keep=event.input)
        self._show_plan()
        self._check_output()

    def _apply_nodes(self, edited: Input | None = None) -> str | None:
        """Take every node field that differs from the plan, together (machines and an address may only go
        together); the error shown, the field it names marked, when the plan refuses them (the plan keeps its last
        good values)."""
        plan, changes = self.state.plan, {}
        for name, _label in NODE_FIELDS:
            field = self.query_one(f"#node-{name}", Input)
            try:
                value = TrainingPlan.parse_field(name, field.value) if field.value.strip() else None
            except UserError as exc:
                field.add_class("-invalid")
                return field_message(str(exc))
            if value is None and name in self.state.given or value is not None and value != getattr(plan, name):
                changes[name] = value
        try:
            if changes:
                self.state.update(**changes)
        except UserError as exc:
            named = [self.query_one(f"#node-{name}", Input) for name, _label in NODE_FIELDS if f"`{name}`" in str(exc)]
            for field in named or ([edited] if edited is not None else []):
                field.add_class("-invalid")
            return field_message(str(exc))
        return None

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
            self._show_commands()
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
        rank = self.state.plan.node_rank
        if rank > 0:  # node 0 owns the run directory; this node only appends to its own log there
            out.update(Text(_("✔ node {rank} writes only its log here ({log}); node 0 owns the run directory").format(
                rank=rank, log=distributed.node_log_name(rank)), style="bold green"))
            return "resume" if resume else "new"
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
                self.notify(_("Sweep started in {dir} (pid {pid}); its runs appear here as they start, results.csv "
                              "at the end.").format(dir=display_path(result[0]), pid=result[1]), title=_("Sweep"),
                            timeout=10)
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
        """Copy the command line (on several machines, this machine's) to the clipboard (OSC 52: works over SSH in
        most terminals)."""
        plan = self.state.plan
        self.app.copy_to_clipboard(node_command_lines(plan)[plan.node_rank] if plan.nnodes > 1 else
                                   self.command_line())
        self.notify(_("Command line copied to the clipboard."))

    @on(Button.Pressed, "#launch-btn")
    def action_launch(self) -> None:
        """Start the run (refused inline when the output directory is in use or the data has problems)."""
        report = self.state.data_report
        if report is not None and not report.ok:
            self.show_error(_("Data: {count} problem(s) in {path}; fix them first (Data step)").format(
                count=report.issue_count, path=report.path))
            return
        problem = self._apply_nodes()
        if problem is not None or self.query(".-invalid"):
            self.show_error(problem or _("Fix the setting marked in red first: the plan still holds its last valid "
                                         "value"))
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
        """Open the run's monitor (node 0's: on another node, say where this node's processes log)."""
        self.query_one("#launch-btn", Button).disabled = False
        rank = self.state.plan.node_rank
        if rank > 0:
            self.notify(_("Node {rank} started (pid {pid}); its processes log to {log}. Node 0 shows the run's "
                          "status, metrics and adapter.").format(
                              rank=rank, pid=message.pid, log=display_path(message.run_dir /
                                                                           distributed.node_log_name(rank))),
                        title=_("Launch"), timeout=15)
            return
        self.tui.open_monitor(message.run_dir)

    def show_error(self, message: str) -> None:
        """Inline error (and re-enable the launch button after a failed launch)."""
        super().show_error(message)
        self.query_one("#launch-btn", Button).disabled = False
