"""The monitor's words: troubleshooting advice and the end-of-run summary, each in full and in one line.

Pure functions of what the monitor read (metrics, status, plan, symptoms), so they are tested without a screen.
They name the TUI's own fields and keys, never `lora-tui` commands or flags: the person is in the TUI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.format import fmt_value

STATE_STYLE = {"running": "bold green", "starting": "bold", "finished": "bold cyan", "stopped": "bold yellow",
               "failed": "bold red", "oom": "bold red", "lost": "bold red"}
"""Colour of each run state."""


def field_label(name: str) -> str:
    """How the TUI names a plan field: the Advisor's label (`dropout`, `early stopping`), else the field's name in
    words."""
    from lora_tui.ui.screens.advisor import EDITABLE

    return dict(EDITABLE).get(name, name.replace("_", " "))


def shown_value(name: str, value: Any) -> str:
    """A setting's value as the monitor shows it (early stopping 0 is `off`)."""
    if name == "early_stopping" and value == 0:
        return "off"
    return fmt_value(value)


def describe_changes(changes: Mapping[str, Any], plan: TrainingPlan | None) -> str:
    """`early stopping off -> 3, eval split 0 -> 0.05`: each change with the run's value before it."""
    parts = []
    for name, value in changes.items():
        before = f"{shown_value(name, getattr(plan, name))} -> " if plan is not None and hasattr(plan, name) else ""
        parts.append(f"{field_label(name)} {before}{shown_value(name, value)}")
    return ", ".join(parts)


def _source(remedy: Any) -> str:
    from lora_tui.core.symptoms import is_beyond_the_guide

    return "beyond the guide" if is_beyond_the_guide(remedy) else "the guide's"


def advice_text(symptoms: Sequence[Any], plan: TrainingPlan | None) -> Text:
    """Every symptom with its evidence, the remedy `a` applies (and where it comes from), then the others."""
    from lora_tui.core.symptoms import remedy_reason

    text = Text()
    for i, symptom in enumerate(symptoms):
        text.append(f"⚠ {symptom.title}: ", style="bold yellow")
        text.append(f"{symptom.evidence}\n")
        if not symptom.remedies:
            continue
        first, *others = symptom.remedies
        reason = remedy_reason(first, plan) if plan is not None else ""
        text.append(f"  remedy ({_source(first)}): ", style="italic")
        text.append(describe_changes(first.changes, plan), style="bold")
        text.append(f"{': ' + reason if reason else ''}", style="italic")
        text.append("  (a: new run with it)\n" if i == 0 else "\n", style="italic")
        if others:
            text.append("  also: " + "; ".join(f"{describe_changes(r.changes, plan)} ({_source(r)})"
                                               for r in others) + "\n", style="dim")
    text.rstrip()
    return text


def advice_brief(symptoms: Sequence[Any], plan: TrainingPlan | None) -> Text:
    """One line per symptom: its title and the remedy `a` applies."""
    text = Text()
    for i, symptom in enumerate(symptoms):
        text.append(f"⚠ {symptom.title}", style="bold yellow")
        if symptom.remedies:
            first = symptom.remedies[0]
            key = "a: " if i == 0 else ""
            text.append(f" · {key}{describe_changes(first.changes, plan)} ({_source(first)})", style="italic")
        text.append("\n")
    text.rstrip()
    return text


@dataclass(frozen=True)
class RunOutcome:
    """What the end-of-run summary says, gathered by the monitor."""

    state: str
    """The run's effective state."""
    steps: int
    """Steps done."""
    elapsed: str
    """Time taken, formatted."""
    final_loss: float | None
    """The last finite training loss."""
    best_loss: float | None
    """The lowest finite training loss."""
    best_eval: tuple[int, float] | None
    """(step, loss) of the lowest eval loss (`run_files.best_eval`)."""
    adapter: str | None
    """The adapter's path as shown, once written."""
    adapter_from: str | None = None
    """Which checkpoint the adapter is, e.g. `step 40, the lowest eval loss`."""
    checkpoint: str | None = None
    """The last checkpoint of a run that did not finish."""


def best_eval_text(best: tuple[int, float] | None) -> str:
    """`best eval 1.2340 at step 40` ('' when no evaluation ran)."""
    return f"best eval {best[1]:.4f} at step {best[0]}" if best is not None else ""


def summary_text(outcome: RunOutcome) -> Text:
    """The full summary: state, losses, best eval step, the adapter and what to do with it here."""
    text = Text()
    text.append(f"Run {outcome.state}", style=STATE_STYLE.get(outcome.state, "bold"))
    text.append(f" after {outcome.steps} steps in {outcome.elapsed}\n")
    if outcome.final_loss is not None:
        text.append(f"final loss {outcome.final_loss:.4f} · best loss {outcome.best_loss:.4f}")
        if outcome.best_eval is not None:
            text.append(f" · {best_eval_text(outcome.best_eval)}")
        text.append("\n")
    if outcome.adapter is not None:
        text.append("Adapter: ", style="bold")
        text.append(outcome.adapter + (f" ({outcome.adapter_from})" if outcome.adapter_from else "") + "\n")
        text.append("o: open it on the Adapters screen, to read it, ask it questions beside the base model "
                    "and merge it\n", style="dim")
    if outcome.state != "finished" and outcome.checkpoint:
        text.append(f"Last checkpoint: {outcome.checkpoint} (r resumes from it)\n")
    text.rstrip()
    return text


def summary_brief(outcome: RunOutcome) -> Text:
    """The summary in one line (wrapped on a narrow screen), with the keys that lead on."""
    text = Text()
    text.append(f"Run {outcome.state}", style=STATE_STYLE.get(outcome.state, "bold"))
    parts = [f"{outcome.steps} steps"]
    if outcome.final_loss is not None:
        parts.append(f"final loss {outcome.final_loss:.4f}")
    if outcome.best_eval is not None:
        parts.append(best_eval_text(outcome.best_eval))
    if outcome.adapter is not None:
        parts.append("o: open the adapter")
    if outcome.state != "finished" and outcome.checkpoint:
        parts.append("r: resume")
    text.append(" · " + " · ".join(parts))
    return text
