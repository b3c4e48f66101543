"""What every wizard step shares: the step bar, the inline error line, the footer."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static
from textual.worker import Worker

from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.ui.app import LoraTuiApp
    from lora_tui.ui.state import WizardState


LINE_EDITING_KEYS = frozenset({"ctrl+a", "ctrl+b", "ctrl+d", "ctrl+e", "ctrl+f", "ctrl+h", "ctrl+k", "ctrl+u",
                               "ctrl+w"})
"""Keys that edit the line in readline (and most shells): no binding of ours fires on them while an Input has
the focus, so typing never leaves a half-typed value for another screen."""


def collides_with_typing(node: DOMNode, action: str) -> bool:
    """Whether `action` is bound on `node` only to line-editing keys and an Input has the focus."""
    if not isinstance(node.screen.focused, Input):
        return False
    keys = {key.strip() for binding in node.BINDINGS if isinstance(binding, Binding) and binding.action == action
            for key in binding.key.split(",")}
    return bool(keys) and keys <= LINE_EDITING_KEYS


def translate_bindings(node: DOMNode) -> None:
    """The node's bindings with their descriptions and tooltips in the current language. Its bindings as first
    seen (the class's, and any the node added itself, such as the app's command palette key) keep the English
    text, the msgids, so a later switch of language translates from them again."""
    source: BindingsMap = node.__dict__.setdefault("_english_bindings", node._bindings)
    node._bindings = BindingsMap.from_keys({
        key: [dataclasses.replace(b, description=_(b.description) if b.description else "",
                                  tooltip=_(b.tooltip) if b.tooltip else "") for b in bindings]
        for key, bindings in source.key_to_bindings.items()})


class AppScreen(Screen[Any]):
    """What every lora-tui screen shares: the app typed, its bindings in the current language, and worker state
    changes handed to its one handler."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        translate_bindings(self)

    @property
    def tui(self) -> LoraTuiApp:
        """The app, typed (every screen runs inside a LoraTuiApp built by `make_app`)."""
        return cast("LoraTuiApp", self.app)

    @property
    def state(self) -> WizardState:
        """The wizard state shared by every screen."""
        return self.tui.state

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A binding on a line-editing key is off while an Input has the focus."""
        return not collides_with_typing(self, action)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Forward to `LoraTuiApp.on_worker_state_changed` (worker events do not bubble)."""
        self.tui.on_worker_state_changed(event)

    def show_error(self, message: str) -> None:
        """Show a user error (a wizard step has an inline line for it; here a toast)."""
        self.notify(message, severity="error", timeout=8)


class WizardScreen(AppScreen):
    """A wizard step: header, step bar, the step's body, an error line and the footer."""

    STEP = ""
    """This step's screen name (see `lora_tui.ui.app.WIZARD`)."""

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

    def can_leave(self) -> bool:
        """Whether Next may go on (a step refuses with an inline message while its input is unusable)."""
        return True

    def _steps_text(self) -> Text:
        from lora_tui.ui.app import WIZARD

        text = Text()
        for i, (name, title) in enumerate(WIZARD):
            if i:
                text.append(" › ", style="dim")
            text.append(f"{i + 1} {_(title)}", style="bold reverse" if name == self.STEP else "dim")
        return text

    async def relocalize(self) -> None:
        """Show the step in the current language: compose it again and fill it as when it was first shown."""
        translate_bindings(self)
        await self.recompose()
        self.on_mount()
        resume = getattr(self, "on_screen_resume", None)
        if resume is not None:
            resume()

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
