"""Step 3, Task and model: the guide's task presets, the base model and the target-module pattern."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import Input, RadioButton, RadioSet, Static

from lora_tui.core.plan import parse_target_modules
from lora_tui.core.progress import Progress
from lora_tui.core.targets import CUSTOM, pattern_names
from lora_tui.errors import UserError
from lora_tui.i18n import _
from lora_tui.ui.messages import ModelChecked
from lora_tui.ui.screens.base import WizardScreen


class TaskScreen(WizardScreen):
    """Choose what the fine-tune is for, which model, and which modules to adapt."""

    STEP = "task"

    def compose_body(self) -> ComposeResult:
        """Task radio set with its description; model field and status; pattern radio set."""
        from lora_tui.core.models.modules import list_presets
        from lora_tui.core.tables import guide

        self._tasks = guide().tasks
        self._patterns = guide().patterns
        presets = list_presets()
        with VerticalScroll(id="body"):
            with Horizontal(id="task-row"):
                with Vertical(classes="column"):
                    yield Static(_("Task"), classes="label")
                    with RadioSet(id="task"):
                        yield RadioButton(_("none (data size and hardware only)"),
                                          value=self.state.plan.task is None, name="")
                        for key, task in self._tasks.items():
                            yield RadioButton(_(task.label), value=self.state.plan.task == key, name=key)
                    yield Static("", id="task-what", classes="explain")
                with Vertical(classes="column"):
                    yield Static(_("Target modules"), classes="label")
                    with RadioSet(id="pattern"):
                        for key in (*pattern_names(), CUSTOM):
                            title = _(self._patterns[key].title) if key in self._patterns else _("Custom")
                            yield RadioButton(title, value=self.state.target_pattern == key, name=key)
                    yield Input(",".join(self.state.plan.target_modules), id="custom-targets",
                                placeholder=_("q_proj,v_proj or all-linear"))
                    yield Static("", id="pattern-why", classes="explain")
            yield Static(_("Base model: `demo`, a preset, a hub id or a local directory (Enter to check)"),
                         classes="label")
            yield Input(self.state.plan.model, id="model",
                        suggester=SuggestFromList(["demo", *(p.name for p in presets)], case_sensitive=False))
            yield Static("", id="model-status")
            yield Static(_("Presets: {names}").format(names=", ".join(p.name for p in presets)), classes="dim")

    def on_mount(self) -> None:
        """Describe the current choices and check the model."""
        super().on_mount()
        self._describe_task()
        self._describe_pattern()
        self.check_model(self.state.plan.model)

    def on_screen_resume(self) -> None:
        """Reflect targets the advisor (or a new model) may have changed meanwhile."""
        self._show_targets()

    def _show_targets(self) -> None:
        """The pattern the plan's targets are on this model, and the module names themselves."""
        self._select_pattern(self.state.target_pattern)
        self.query_one("#custom-targets", Input).value = ",".join(self.state.plan.target_modules)
        self._describe_pattern()

    @work(thread=True, exclusive=True, exit_on_error=False, group="model")
    def check_model(self, model: str) -> None:
        """Whether the model is on this machine, and its module inventory."""
        from lora_tui.core.models.modules import is_available_offline, load_inventory

        def progress(event: Progress) -> None:
            if not event.final:
                self.app.call_from_thread(self._show_progress, model, event)

        available, reason = is_available_offline(model)
        try:
            inventory = load_inventory(model, progress=progress)
        except UserError as exc:
            inventory, reason = None, str(exc)
        report = None
        if inventory is not None and self.state.data_report is not None and self.state.data_model != model:
            from lora_tui.core.dataset.report import inspect_for_model

            # token lengths (and so max_seq_length) are this model's tokenizer's, as `lora-tui train` measures them
            report = inspect_for_model(self.state.data_path, model, max_seq_length=self.state.plan.max_seq_length,
                                       columns=self.state.plan.columns, progress=progress)
        self.post_message(ModelChecked(model, available, reason, inventory, report))

    def _show_progress(self, model: str, event: Progress) -> None:
        """`Checking MODEL: building the module tree … 3s` while the check works (a new model, once)."""
        self.query_one("#model-status", Static).update(Text(_("Checking {model}: {progress}").format(
            model=model, progress=event.describe()), style="dim"))

    def on_model_checked(self, message: ModelChecked) -> None:
        """Show availability; keep the model and inventory when it could be loaded."""
        status = self.query_one("#model-status", Static)
        if message.inventory is None:
            status.update(Text(f"✘ {message.reason}", style="bold red"))
            self.state.set_inputs(inventory=None)
            return
        inv = message.inventory
        if message.data_report is not None:
            self.state.set_inputs(data_report=message.data_report, data_model=message.model)
        self.state.set_inputs(inventory=inv)
        if message.model != self.state.plan.model:
            self.state.update(model=message.model)
        self._show_targets()
        text = Text()
        text.append(_("✔ available offline") if message.available else _("… not on this machine yet"),
                    style="bold green" if message.available else "bold yellow")
        text.append(f"  {message.reason}\n", style="dim")
        text.append(_("{type}: {layers} layers, hidden {hidden}, {params} parameters").format(
            type=inv.model_type, layers=inv.num_layers, hidden=inv.hidden_size, params=f"{inv.total_params:,}"))
        status.update(text)

    @on(Input.Submitted, "#model")
    def _model_submitted(self, event: Input.Submitted) -> None:
        model = event.value.strip()
        if not model:
            self.show_error(_("Model: type `demo`, a preset name, a hub id or a local directory"))
            return
        self.clear_error()
        self.query_one("#model-status", Static).update(Text(_("Checking {model}…").format(model=model), style="dim"))
        self.check_model(model)

    @on(RadioSet.Changed, "#task")
    def _task_changed(self, event: RadioSet.Changed) -> None:
        key = event.pressed.name or None
        if key != self.state.plan.task:
            self.state.update(task=key)
            self._show_targets()
        self._describe_task()

    @on(RadioSet.Changed, "#pattern")
    def _pattern_changed(self, event: RadioSet.Changed) -> None:
        key = event.pressed.name or CUSTOM
        if key in self._patterns and key != self.state.target_pattern:
            try:
                self.state.choose_pattern(key)
            except UserError as exc:
                self.show_error(_("Target modules: {why}").format(why=exc))
                return
            self.clear_error()
            self.query_one("#custom-targets", Input).value = ",".join(self.state.plan.target_modules)
        self._describe_pattern(custom=key == CUSTOM)

    @on(Input.Submitted, "#custom-targets")
    def _targets_submitted(self, event: Input.Submitted) -> None:
        try:
            self.state.update(target_modules=parse_target_modules(event.value))
        except UserError as exc:
            self.show_error(_("Target modules: {why}").format(why=exc))
            return
        self.clear_error()
        self._select_pattern(self.state.target_pattern)
        self._describe_pattern(custom=self.state.target_pattern == CUSTOM)

    def _select_pattern(self, key: str) -> None:
        for button in self.query("#pattern RadioButton").results(RadioButton):
            if button.name == key and not button.value:
                button.value = True

    def _describe_task(self) -> None:
        task = self._tasks.get(self.state.plan.task or "")
        text = f"{_(task.what)}\n{_(task.why)}" if task else \
            _("No task preset: settings follow the data size and hardware.")
        self.query_one("#task-what", Static).update(text)

    def _describe_pattern(self, *, custom: bool = False) -> None:
        key = CUSTOM if custom else self.state.target_pattern
        pattern = self._patterns.get(key)
        why = _(pattern.why) if pattern else _("Your own list (Enter to apply): names are matched as PEFT does.")
        if pattern is not None and list(pattern.modules) != self.state.plan.target_modules:
            why += _("\nOn this model: {modules}").format(modules=", ".join(self.state.plan.target_modules))
        self.query_one("#pattern-why", Static).update(why)
        self.query_one("#custom-targets", Input).disabled = key != CUSTOM

    def can_leave(self) -> bool:
        """Go on only with a model whose inventory is loaded (the advisor's math needs it)."""
        if self.state.inventory is None:
            self.show_error(_("Model: no module inventory yet; type a model and press Enter"))
            return False
        return True
