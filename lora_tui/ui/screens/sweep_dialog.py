"""Start a sweep from the Review screen: the wizard's plan with a grid typed as `SETTING=VALUE,VALUE ...`, run by
`lora-tui sweep` in the background (its points appear on the Runs screen as they run)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from lora_tui.core import sweep
from lora_tui.core.plan import TrainingPlan
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _
from lora_tui.ui.screens.base import translate_bindings


class SweepDialog(ModalScreen[tuple[Path, int] | None]):
    """Ask for the grid; dismissed with (sweep directory, pid) once started, None when cancelled."""

    DEFAULT_CSS = """
    SweepDialog { align: center middle; }
    #sweep-box { width: 90%; max-width: 100; height: auto; border: round $accent; padding: 0 1;
                 background: $surface; }
    #sweep-error { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", N_("Cancel"), id="sweep-cancel")]

    def __init__(self, plan: TrainingPlan, root: Path) -> None:
        super().__init__()
        translate_bindings(self)
        self.plan = plan
        """The wizard's plan: every point's settings but the grid's."""
        self.root = root
        """Where the sweep directory goes (the runs root)."""

    def compose(self) -> ComposeResult:
        """The grid's input, a hint and an error line."""
        with Vertical(id="sweep-box"):
            yield Static(_("Sweep: this plan over a grid of settings, one run after another (Enter starts it, "
                           "Esc cancels). Points that cannot fit the GPU are dropped."))
            yield Input(placeholder="lora_r=8,16 learning_rate=5e-5,2e-4", id="sweep-grid")
            yield Static("", id="sweep-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Start the sweep, or say what is wrong with the grid."""
        try:
            started = sweep.start_detached(self.plan, sweep.parse_grid(event.value), self.root)
        except UserError as exc:
            self.query_one("#sweep-error", Static).update(str(exc))
            return
        self.dismiss(started)

    def action_cancel(self) -> None:
        """Close without starting anything."""
        self.dismiss(None)
