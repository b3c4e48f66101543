"""What every wizard step shares: the step bar, the inline error line, the footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker

if TYPE_CHECKING:
    from lora_tui.ui.app import LoraTuiApp
    from lora_tui.ui.state import WizardState


class ForwardsWorkerEvents:
    """Mixin for screens: hand worker state changes to the App's one handler (they do not bubble)."""

    app: Any

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Forward to `LoraTuiApp.on_worker_state_changed`."""
        self.app.on_worker_state_changed(event)


class WizardScreen(ForwardsWorkerEvents, Screen[Any]):
    """A wizard step: header, step bar, the step's body, an error line and the footer."""

    STEP = ""
    """This step's screen name (see `lora_tui.ui.app.WIZARD`)."""

    @property
    def tui(self) -> LoraTuiApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    @property
    def state(self) -> WizardState:
        """The wizard state shared by every screen."""
        return self.tui.state

    def compose(self) -> ComposeResult:
        """Header, steps, body, error line, footer."""
        yield Header(show_clock=False)
        yield Static(self._steps_text(), id="steps")
        yield from self.compose_body()
        yield Static("", id="error")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The step's own widgets."""
        yield from ()

    def _steps_text(self) -> Text:
        from lora_tui.ui.app import WIZARD

        text = Text()
        for i, (name, title) in enumerate(WIZARD):
            if i:
                text.append(" › ", style="dim")
            text.append(f"{i + 1} {title}", style="bold reverse" if name == self.STEP else "dim")
        return text

    def show_error(self, message: str) -> None:
        """Show a user error inline (cleared by `clear_error`)."""
        error = self.query_one("#error", Static)
        error.update(Text(message, style="bold red"))
        error.display = True

    def clear_error(self) -> None:
        """Hide the inline error."""
        error = self.query_one("#error", Static)
        error.update("")
        error.display = False

    def on_mount(self) -> None:
        """Start with no error shown."""
        self.clear_error()
