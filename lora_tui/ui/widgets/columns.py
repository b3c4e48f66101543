"""The Data step's column chooser: which field of the file feeds each part of an example (`--columns`).

One Select per role (messages, prompt, input, response, system, text), offering the file's real field names.
It shows the detected mapping; "Use these columns" posts `ColumnsPicker.Chosen` with the mapping text, and
"Detect" posts it with None (back to the detected schema). Collapsed while the schema is detected, open when not.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Collapsible, Label, Select

from lora_tui.core.dataset.mapping import ROLES
from lora_tui.i18n import N_, _

ROLE_HELP = {
    "messages": N_("messages (chat turns)"),
    "prompt": N_("prompt"),
    "input": N_("input (added to the prompt)"),
    "response": N_("response"),
    "system": N_("system"),
    "text": N_("text"),
}
"""What each role's Select is labelled (English; `_()` shows it)."""


def mapping_text(chosen: dict[str, str]) -> str:
    """`role=field,...` in role order, for the roles with a field chosen."""
    return ",".join(f"{role}={chosen[role]}" for role in ROLES if chosen.get(role))


def parse_pairs(columns: str | None) -> dict[str, str]:
    """role -> field of a mapping text (already validated by core)."""
    pairs: dict[str, str] = {}
    for item in (columns or "").split(","):
        role, _, field = item.partition("=")
        if role.strip() and field.strip():
            pairs[role.strip()] = field.strip()
    return pairs


class ColumnsPicker(Vertical):
    """Choose the field for each role from the file's field names (inside a collapsible section)."""

    class Chosen(Message):
        """The person chose a mapping (None: detect the schema again)."""

        def __init__(self, columns: str | None) -> None:
            super().__init__()
            self.columns = columns
            """The mapping text, or None."""

    DEFAULT_CSS = """
    ColumnsPicker { height: auto; }
    ColumnsPicker #columns-grid { grid-size: 4; grid-columns: auto 1fr auto 1fr; grid-gutter: 0 1; height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._fields: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        """The role Selects and the two buttons, inside a collapsible section."""
        with Collapsible(title=_("Columns"), collapsed=True, id="columns-section"):
            with Grid(id="columns-grid"):
                for role in ROLES:
                    yield Label(_(ROLE_HELP[role]), classes="dim")
                    yield Select([], prompt="—", id=f"col-{role}", compact=True)
            with Horizontal(classes="row"):
                yield Button(_("Use these columns"), id="columns-apply")
                yield Button(_("Detect"), id="columns-auto")

    def show(self, fields: Iterable[str], columns: str | None, title: str, *, open_: bool) -> None:
        """Offer `fields`, select the mapping `columns`, title the section; open it when the schema is unknown."""
        self._fields = tuple(fields)
        chosen = parse_pairs(columns)
        for role in ROLES:
            select = self.query_one(f"#col-{role}", Select)
            names = list(dict.fromkeys([*self._fields, *([chosen[role]] if role in chosen else [])]))
            select.set_options([(name, name) for name in names])
            select.value = chosen[role] if role in chosen else Select.NULL
        section = self.query_one("#columns-section", Collapsible)
        section.title = title
        section.collapsed = not open_

    def chosen(self) -> dict[str, str]:
        """role -> the field selected for it."""
        out: dict[str, str] = {}
        for role in ROLES:
            value = self.query_one(f"#col-{role}", Select).value
            if isinstance(value, str):
                out[role] = value
        return out

    @on(Button.Pressed, "#columns-apply")
    def _apply(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Chosen(mapping_text(self.chosen()) or None))

    @on(Button.Pressed, "#columns-auto")
    def _auto(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.Chosen(None))
