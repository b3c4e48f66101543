"""The lora-tui App and its one factory, `make_app`, used by `lora-tui` and by the tests alike.

The App owns the wizard state and its collaborators (hardware probe, live GPU query, run launcher, runs root);
screens are thin views over `lora_tui.core` that read and write `app.state`. Only the first screen is imported
at start-up; the others are imported when first shown.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from lora_tui import i18n
from lora_tui.core.paths import output_root, retry_output
from lora_tui.core.plan import TrainingPlan
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _
from lora_tui.ui.state import WizardState

if TYPE_CHECKING:
    from lora_tui.core.hardware.detect import GpuInfo, HardwareReport
    from lora_tui.core.resolve import ResolvedPlan

class HardwareProbe(Protocol):
    """Finds the machine's GPUs, backend and memory (the real one: `core.hardware.detect.detect_hardware`)."""

    def __call__(self) -> HardwareReport: ...


class GpuQuery(Protocol):
    """Live memory and utilisation of each GPU, and NVML's status (the real one: `core.hardware.detect.query_gpus`)."""

    def __call__(self) -> tuple[Sequence[GpuInfo], str]: ...


class LaunchedRun(Protocol):
    """What a launcher returns: the run directory and the process started."""

    @property
    def run_dir(self) -> Path:
        """The run directory the process writes."""

    @property
    def pid(self) -> int:
        """The training process's id."""


class Launcher(Protocol):
    """Validates a resolved plan for launch and starts it detached (the real one: `core.launcher.launch_run`)."""

    def __call__(self, resolved: ResolvedPlan, *, overwrite: bool = False, resume: bool = False) -> LaunchedRun: ...


WIZARD: tuple[tuple[str, str], ...] = (
    ("hardware", N_("Hardware")),
    ("data", N_("Data")),
    ("task", N_("Task and model")),
    ("advisor", N_("Advisor")),
    ("review", N_("Review and launch")),
)
"""The wizard's screens in order: (screen name, title in English; `_(title)` shows it)."""

_SCREEN_MODULES = {
    "hardware": ("lora_tui.ui.screens.hardware", "HardwareScreen"),
    "data": ("lora_tui.ui.screens.data", "DataScreen"),
    "task": ("lora_tui.ui.screens.task", "TaskScreen"),
    "advisor": ("lora_tui.ui.screens.advisor", "AdvisorScreen"),
    "review": ("lora_tui.ui.screens.review", "ReviewScreen"),
    "runs": ("lora_tui.ui.screens.runs", "RunsScreen"),
}
"""Where each named screen lives; imported on first use so start-up imports only the first one."""


def _lazy_screen(name: str) -> Callable[[], Screen[Any]]:
    module_name, class_name = _SCREEN_MODULES[name]

    def build() -> Screen[Any]:
        return getattr(importlib.import_module(module_name), class_name)()

    return build


def _default_probe() -> HardwareReport:
    from lora_tui.core.hardware.detect import detect_hardware

    return detect_hardware()


def _default_gpu_query() -> tuple[Sequence[GpuInfo], str]:
    from lora_tui.core.hardware.detect import query_gpus

    gpus, status = query_gpus()
    return tuple(gpus), status  # a Phrase: each screen shows it in its language


def _default_launcher(resolved: ResolvedPlan, *, overwrite: bool = False, resume: bool = False) -> LaunchedRun:
    """`core.launcher.launch_run`: English run files, refusals in the language shown."""
    from lora_tui.core.launcher import launch_run

    return launch_run(resolved, overwrite=overwrite, resume=resume)


class LoraTuiApp(App[None]):
    """From a GPU and a dataset to a trained LoRA adapter."""

    CSS_PATH = "app.tcss"
    TITLE = "lora-tui"
    SUB_TITLE = N_("LoRA fine-tuning, explained")
    SCREENS = {name: _lazy_screen(name) for name in _SCREEN_MODULES}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("f1", "help", N_("Help"), tooltip=N_("What r, alpha, dropout, targets, lr and batch mean"), id="help"),
        Binding("ctrl+n", "next", N_("Next"), tooltip=N_("Next wizard step"), id="next"),
        Binding("ctrl+b", "previous", N_("Back"), tooltip=N_("Previous wizard step"), id="back"),
        Binding("ctrl+r", "runs", N_("Runs"), tooltip=N_("Runs under the output root"), id="runs"),
        Binding("ctrl+a", "adapters", N_("Adapters"), tooltip=N_("Trained adapters: inspect, try, compare"),
                id="adapters"),
        Binding("f2", "toggle_theme", N_("Theme"), show=False, tooltip=N_("Switch dark/light"), id="theme"),
    ]

    def __init__(self, *, hardware_probe: HardwareProbe, gpu_query: GpuQuery, launcher: Launcher,
                 runs_root: Path, state: WizardState, poll_interval: float = 0.25,
                 gpu_interval: float = 2.0, start: str = "hardware", open_run: Path | None = None,
                 open_compare: Sequence[Path] = ()) -> None:
        super().__init__()
        from lora_tui.ui.screens.base import translate_bindings

        translate_bindings(self)
        self.sub_title = _(self.SUB_TITLE)
        self.hardware_probe = hardware_probe
        """Returns the HardwareReport; run in a worker."""
        self.gpu_query = gpu_query
        """Live GPU refresh; run in a worker every `gpu_interval` seconds."""
        self.launcher = launcher
        """Starts a `lora-tui train` process for a plan."""
        self.runs_root = runs_root
        """Where runs are created and listed."""
        self.state = state
        """The wizard's state (one TrainingPlan and what the screens learned)."""
        self.poll_interval = poll_interval
        """Seconds between reads of a followed run's files."""
        self.gpu_interval = gpu_interval
        """Seconds between live GPU refreshes (0 disables them)."""
        self.start = start
        """The first screen: a wizard step name or `runs`."""
        self.open_run = open_run
        """A run directory whose monitor opens over the first screen."""
        self.open_compare_dirs = list(open_compare)
        """Run directories compared over the first screen (`lora-tui runs compare --tui`)."""

    def get_default_screen(self) -> Screen[Any]:
        """The first screen is the bottom of the stack (no blank default screen under it: a faster start)."""
        return self.get_screen(self.start)

    def on_mount(self) -> None:
        """Open a run's monitor over the first screen when one was asked for."""
        if self.open_run is not None:
            self.open_monitor(self.open_run)
        if self.open_compare_dirs:
            self.open_compare(self.open_compare_dirs)

    # ---- navigation -------------------------------------------------------------------------------------

    def wizard_index(self) -> int | None:
        """Position of the current screen in the wizard, None outside it."""
        for i, (name, _title) in enumerate(WIZARD):
            if self.is_screen_installed(name) and self.get_screen(name) is self.screen:
                return i
        return None

    def goto(self, name: str) -> None:
        """Show a named screen, keeping every other screen (and what was typed there) alive."""
        if self.screen_stack[0] is self.get_screen(name):
            while len(self.screen_stack) > 1:
                self.pop_screen()
        elif len(self.screen_stack) > 1:
            self.switch_screen(name)
        else:
            self.push_screen(name)

    def action_next(self) -> None:
        """Go to the next wizard step (the screen may refuse with an inline message)."""
        index = self.wizard_index()
        if index is None or index + 1 >= len(WIZARD):
            return
        from lora_tui.ui.screens.base import WizardScreen

        if isinstance(self.screen, WizardScreen) and not self.screen.can_leave():
            return
        self.goto(WIZARD[index + 1][0])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A binding on a line-editing key (ctrl+b: back) is off while an Input has the focus."""
        from lora_tui.ui.screens.base import collides_with_typing

        return not collides_with_typing(self, action)

    def action_previous(self) -> None:
        """Go to the previous wizard step (from a monitor or the runs list: back to the review)."""
        index = self.wizard_index()
        if index is None:
            if len(self.screen_stack) > 1:
                self.pop_screen()
            else:
                self.goto("review")
            return
        if index > 0:
            self.goto(WIZARD[index - 1][0])

    def action_runs(self) -> None:
        """Show the runs found under the output root, over the current screen (Back returns to it)."""
        runs_screen = self.get_screen("runs")
        if runs_screen in self.screen_stack:
            while self.screen is not runs_screen:
                self.pop_screen()
        else:
            self.push_screen(runs_screen)

    def action_help(self) -> None:
        """Open the help on LoRA parameters."""
        from lora_tui.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_adapters(self) -> None:
        """Open the adapter manager."""
        from lora_tui.ui.screens.adapters import AdaptersScreen

        self.push_screen(AdaptersScreen(runs_root=self.runs_root))

    def open_monitor(self, run_dir: Path) -> None:
        """Show the monitor for a run directory."""
        from lora_tui.ui.screens.monitor import MonitorScreen

        self.push_screen(MonitorScreen(Path(run_dir)))

    def open_compare(self, run_dirs: Sequence[Path]) -> None:
        """Show several runs side by side, their loss curves overlaid."""
        from lora_tui.ui.screens.compare import CompareScreen

        self.push_screen(CompareScreen([Path(p) for p in run_dirs]))

    def review_with(self, changes: dict[str, Any], *, reason: str, base: TrainingPlan | None = None) -> None:
        """Make a new run configuration from `base` (a run's plan; else the current one) with `changes`, in a
        free `NAME-retry` directory, and show it on the review."""
        if base is not None:
            self.state.start_from(base)
        output = retry_output(self.state.plan.output, self.runs_root)
        self.state.update(**changes, output=str(output))
        self.notify(reason, title=_("New run configuration"))
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.goto("review")

    # ---- commands and errors ----------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Command palette entries, "Category: Action"."""
        yield from super().get_system_commands(screen)
        for name, title in WIZARD:
            yield SystemCommand(_("Wizard: {step}").format(step=_(title)),
                                _("Go to the {step} step").format(step=_(title).lower()), lambda n=name: self.goto(n))
        yield SystemCommand(_("Runs: Show runs"), _("Runs under the output root; open one's monitor"),
                            self.action_runs)
        yield SystemCommand(_("Help: LoRA parameters"), _("r, alpha, dropout, targets, lr, batch"), self.action_help)
        yield SystemCommand(_("View: Toggle dark/light"), _("Switch the theme"), self.action_toggle_theme)
        yield SystemCommand(_("Adapters: Manage adapters"), _("List, inspect and try adapters"),
                            self.action_adapters)
        for lang in i18n.LANGUAGES:
            if lang != i18n.language():
                name = i18n.LANGUAGE_NAMES[lang]
                yield SystemCommand(_("Language: {name}").format(name=name),
                                    _("Show lora-tui in {name} (remembered for the next start)").format(name=name),
                                    lambda chosen=lang: self.switch_language(chosen))

    def switch_language(self, lang: str) -> None:
        """Show everything in `lang` from now on and remember it in the settings file: the reasons are resolved
        again, screens not shown are built again when next shown, the shown ones are composed again."""
        from lora_tui.ui.screens.base import translate_bindings
        from lora_tui.ui.settings import save_language

        i18n.set_language(lang)
        try:
            save_language(lang)
        except OSError as exc:
            self.notify(_("The language is not remembered: {why}").format(why=exc), severity="warning")
        self.state.set_inputs()  # the reasons, in the new language
        translate_bindings(self)
        self.sub_title = _(self.SUB_TITLE)
        for name in _SCREEN_MODULES:
            if self.is_screen_installed(name) and self.get_screen(name) not in self.screen_stack:
                self.uninstall_screen(name)
                self._installed_screens[name] = _lazy_screen(name)  # built again, in the new language
        self.run_worker(self._relocalize_stack(), group="language", exclusive=True)

    async def _relocalize_stack(self) -> None:
        """Compose every shown screen again in the current language."""
        for shown in list(self.screen_stack):
            relocalize = getattr(shown, "relocalize", None)
            if relocalize is not None:
                await relocalize()
        self.refresh_bindings()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures surface (screens forward their workers' events here, since
        `Worker.StateChanged` does not bubble): inline on the screen when it can show them, else a toast."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        from lora_tui.ui.screens.base import AppScreen

        if isinstance(self.screen, AppScreen):
            self.screen.show_error(message)
        else:
            self.notify(message, severity="error", timeout=8)


def make_app(*, hardware_probe: HardwareProbe | None = None, gpu_query: GpuQuery | None = None,
             launcher: Launcher | None = None, runs_root: str | Path | None = None,
             plan: TrainingPlan | None = None, poll_interval: float = 0.25, gpu_interval: float = 2.0,
             start: str = "hardware", open_run: str | Path | None = None,
             open_compare: Sequence[str | Path] = ()) -> LoraTuiApp:
    """Build the app with its collaborators; anything not given is the real one."""
    from lora_tui.ui import cjk_wrap

    cjk_wrap.install()  # Japanese lines break between characters, not only at spaces
    root = Path(runs_root) if runs_root is not None else output_root()
    state = WizardState(runs_root=root)
    if plan is not None:
        state.start_from(plan, only_changed=True, keep_output=True)
    return LoraTuiApp(
        hardware_probe=hardware_probe or _default_probe,
        gpu_query=gpu_query or _default_gpu_query,
        launcher=launcher or _default_launcher,
        runs_root=root,
        state=state,
        poll_interval=poll_interval,
        gpu_interval=gpu_interval,
        start=start,
        open_run=Path(open_run) if open_run is not None else None,
        open_compare=[Path(p) for p in open_compare],
    )
