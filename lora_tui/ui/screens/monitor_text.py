"""The monitor's words: the status lines, the progress line, troubleshooting advice and the end-of-run summary
(each in full and in one line), and the note shown while a run starts.

Pure functions of what the monitor read (metrics, status, plan, symptoms), so they are tested without a screen.
They name the TUI's own fields and keys, never `lora-tui` commands or flags: the person is in the TUI. Every
message goes through the catalogue; a message with a styled part is laid out by `styled`, so a translation may
put that part anywhere.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from lora_tui.core import follow
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import MetricsRecord, RankMemory
from lora_tui.core.run_world import World, node_lines, nodes_brief, world_line
from lora_tui.i18n import _, ngettext, pgettext
from lora_tui.ui.format import fmt_value

STATE_STYLE = {"running": "bold green", "starting": "bold", "finished": "bold cyan", "stopped": "bold yellow",
               "failed": "bold red", "oom": "bold red", "lost": "bold red"}
"""Colour of each run state."""

SEP = " · "
"""Between the items of a one-line list (step, epoch, speed; the brief summary)."""


def styled(template: str, style: str = "", **values: str | tuple[str, str]) -> Text:
    """`template` (a translated message) with its `{name}` placeholders filled: a plain string, or a
    (text, style) pair drawn in its own style; the rest of the message in `style`."""
    text = Text()
    for literal, name, spec, _conversion in string.Formatter().parse(template):
        text.append(literal, style=style)
        if name is not None:
            value = values[name]
            if isinstance(value, tuple):
                text.append(value[0], style=value[1])
            else:
                text.append(format(value, spec or ""), style=style)
    return text


def state_word(state: str) -> str:
    """A run state in the language shown (`finished`, `完了`); `waiting` before the status is read."""
    return pgettext("run state", "waiting") if state == "waiting" else pgettext("run state", state)


def field_label(name: str) -> str:
    """How the TUI names a plan field: the Advisor's label (`dropout`, `early stopping`), else the field's name."""
    from lora_tui.ui.screens.advisor import EDITABLE

    label = dict(EDITABLE).get(name)
    return _(label) if label is not None else name


def shown_value(name: str, value: Any) -> str:
    """A setting's value as the monitor shows it (early stopping 0 is `off`)."""
    if name == "early_stopping" and value == 0:
        return "off"
    return fmt_value(value)


def describe_changes(changes: Mapping[str, Any], plan: TrainingPlan | None) -> str:
    """`early stopping off -> 3, eval split 0 -> 0.05`: each change with the run's value before it."""
    parts = []
    for name, value in changes.items():
        if plan is not None and hasattr(plan, name):
            parts.append(_("{setting} {before} -> {after}").format(
                setting=field_label(name), before=shown_value(name, getattr(plan, name)),
                after=shown_value(name, value)))
        else:
            parts.append(_("{setting} {value}").format(setting=field_label(name), value=shown_value(name, value)))
    return _(", ").join(parts)


def _source(remedy: Any) -> str:
    from lora_tui.core.symptoms import is_beyond_the_guide

    return pgettext("remedy source", "beyond the guide") if is_beyond_the_guide(remedy) else \
        pgettext("remedy source", "the guide's")


def advice_text(symptoms: Sequence[Any], plan: TrainingPlan | None) -> Text:
    """Every symptom with its evidence, the remedy `a` applies (and where it comes from), then the others."""
    from lora_tui.core.symptoms import remedy_reason

    text = Text()
    for i, symptom in enumerate(symptoms):
        text.append_text(styled(_("⚠ {title}: {evidence}"), "bold yellow", title=symptom.title,
                                evidence=(symptom.evidence, "")))
        text.append("\n")
        if not symptom.remedies:
            continue
        first, *others = symptom.remedies
        reason = remedy_reason(first, plan) if plan is not None else ""
        text.append_text(styled(_("  remedy ({source}): {changes}"), "italic", source=_source(first),
                                changes=(describe_changes(first.changes, plan), "bold")))
        if reason:
            text.append(_(": {reason}").format(reason=reason), style="italic")
        text.append((_("  (a: new run with it)") if i == 0 else "") + "\n", style="italic")
        if others:
            also = _("; ").join(_("{changes} ({source})").format(changes=describe_changes(r.changes, plan),
                                                                 source=_source(r)) for r in others)
            text.append(_("  also: {remedies}").format(remedies=also) + "\n", style="dim")
    text.rstrip()
    return text


def advice_brief(symptoms: Sequence[Any], plan: TrainingPlan | None) -> Text:
    """One line per symptom: its title and the remedy `a` applies."""
    text = Text()
    for i, symptom in enumerate(symptoms):
        text.append(_("⚠ {title}").format(title=symptom.title), style="bold yellow")
        if symptom.remedies:
            first = symptom.remedies[0]
            line = _(" · a: {changes} ({source})") if i == 0 else _(" · {changes} ({source})")
            text.append(line.format(changes=describe_changes(first.changes, plan), source=_source(first)),
                        style="italic")
        text.append("\n")
    text.rstrip()
    return text


def step_text(step: int, max_steps: int | None, last: MetricsRecord, state: str, elapsed: float | None) -> Text:
    """`step 37/69 · epoch 1.62 · 1,234 tok/s · padding 12% · 1m02s · ETA 0m55s` (tok/s: non-padding tokens)."""
    parts = [_("step {step}/{max_steps}").format(step=step, max_steps=max_steps or "?")]
    if last.epoch is not None and math.isfinite(last.epoch):
        parts.append(_("epoch {epoch}").format(epoch=f"{last.epoch:.2f}"))
    if last.tokens_per_second is not None and math.isfinite(last.tokens_per_second):
        parts.append(_("{rate} tok/s").format(rate=f"{last.tokens_per_second:,.0f}"))
    if last.padding_share is not None and math.isfinite(last.padding_share):
        parts.append(_("padding {share}").format(share=f"{last.padding_share:.0%}"))
    parts.append(follow.format_duration(elapsed))
    if state in ("running", "starting"):
        eta = follow.eta_seconds(step, max_steps, elapsed)
        parts.append(_("ETA {time}").format(time=follow.format_duration(eta)))
    return Text(SEP.join(parts))


ERROR_CELLS = 150
"""How much of each part of a run's error the status shows on a short screen when its width is not known."""


def error_parts(error: str | None) -> list[str]:
    """A run's error as the lines to show: what failed, then each other machine's last log lines (a run of
    several machines joins them with ` | `, `train.distributed.peer_failure`), so a rank that died stands out."""
    return [part.strip() for part in (error or "").split(" | ") if part.strip()]


def status_head(run: str, state: str, *, pid: int | None = None, error: str | None = None,
                memory: str | None = None, world: World | None = None,
                ranks: Sequence[RankMemory] | None = None, brief: bool = False, cells: int = ERROR_CELLS) -> Text:
    """The status lines: the run and its state (its pid while it runs), the world of a run of several processes,
    the error (with `brief`, each part cut to `cells`, a line), the memory estimate against the measured peak, and each
    machine's peak memory with each of its GPUs' (with `brief`, every machine's in one line)."""
    head = styled(_("Run {run}  {state}"), "bold", run=(run, ""),
                  state=(state_word(state), STATE_STYLE.get(state, "bold")))
    if pid and state in ("running", "starting"):
        head.append("  " + _("pid {pid}").format(pid=pid), style="dim")
    shape = world_line(world)
    if shape:
        head.append("  " + shape, style="bold")
    for part in error_parts(error):
        line = Text(part, style="red")
        if brief:
            line.truncate(max(1, cells), overflow="ellipsis")
        head.append("\n")
        head.append_text(line)
    if memory:
        head.append("\n" + _("memory: {line}").format(line=memory), style="dim")
    brief_line = nodes_brief(ranks) if brief else None
    for node in [brief_line] if brief_line else node_lines(ranks):
        head.append(f"\n  {node}", style="dim")
    return head


def details_text(error: str | None, ranks: Sequence[RankMemory] | None) -> Text:
    """What a short screen's status leaves out: the whole error, then each machine's and each GPU's peak memory
    ('' when neither is known)."""
    text = Text("\n".join(error_parts(error)), style="red")
    lines = node_lines(ranks)
    if lines:
        text.append(("\n" if text else "") + "\n".join(lines), style="dim")
    return text


def waiting_note(building: bool, cache: str, *, brief: bool = False) -> Text:
    """While no step has been logged yet: what the starting process is doing (in one line with `brief`)."""
    if brief:
        what = (_("Starting: building the demo model (once per machine); the first loss follows the first optimizer "
                  "step.") if building else
                _("Starting: loading torch and the model; the first loss follows the first optimizer step."))
        return Text(what, style="dim")
    if building:
        return Text(_("Starting: the training process loads torch, transformers and the model; first, it builds the "
                      "demo model in {cache} (once per machine, a minute or two on a CPU; its progress is in the bar "
                      "above). The first loss appears after the first optimizer step.").format(cache=cache),
                    style="dim")
    return Text(_("Starting: the training process loads torch, transformers and the model. The first loss appears "
                  "after the first optimizer step."), style="dim")


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
    """Which checkpoint the adapter is (`core.adapter_report.adapter_choice_line`)."""
    checkpoint: str | None = None
    """The last checkpoint of a run that did not finish."""


def best_eval_text(best: tuple[int, float] | None) -> str:
    """`best eval 1.2340 at step 40` ('' when no evaluation ran)."""
    return _("best eval {loss} at step {step}").format(loss=f"{best[1]:.4f}", step=best[0]) if best else ""


def _run_state(outcome: RunOutcome, template: str, **values: str) -> Text:
    return styled(template, "", state=(state_word(outcome.state), STATE_STYLE.get(outcome.state, "bold")), **values)


def summary_text(outcome: RunOutcome) -> Text:
    """The full summary: state, losses, best eval step, the adapter and what to do with it here."""
    text = _run_state(outcome, ngettext("Run {state} after {count} step in {elapsed}",
                                        "Run {state} after {count} steps in {elapsed}", outcome.steps),
                      count=str(outcome.steps), elapsed=outcome.elapsed)
    text.append("\n")
    if outcome.final_loss is not None:
        parts = [_("final loss {loss}").format(loss=f"{outcome.final_loss:.4f}"),
                 _("best loss {loss}").format(loss=f"{outcome.best_loss or 0:.4f}")]
        if outcome.best_eval is not None:
            parts.append(best_eval_text(outcome.best_eval))
        text.append(SEP.join(parts) + "\n")
    if outcome.adapter is not None:
        where = _("{path} ({which})").format(path=outcome.adapter, which=outcome.adapter_from) \
            if outcome.adapter_from else outcome.adapter
        text.append_text(styled(_("Adapter: {path}"), "bold", path=(where, "")))
        text.append("\n" + _("o: open it on the Adapters screen, to read it, ask it questions beside the base model "
                             "and merge it") + "\n", style="dim")
    if outcome.state != "finished" and outcome.checkpoint:
        text.append(_("Last checkpoint: {checkpoint} (r resumes from it)").format(checkpoint=outcome.checkpoint)
                    + "\n")
    text.rstrip()
    return text


def summary_brief(outcome: RunOutcome) -> Text:
    """The summary in one line (wrapped on a narrow screen), with the keys that lead on."""
    parts = [ngettext("{count} step", "{count} steps", outcome.steps).format(count=outcome.steps)]
    if outcome.final_loss is not None:
        parts.append(_("final loss {loss}").format(loss=f"{outcome.final_loss:.4f}"))
    if outcome.best_eval is not None:
        parts.append(best_eval_text(outcome.best_eval))
    if outcome.adapter is not None:
        parts.append(_("o: open the adapter"))
    if outcome.state != "finished" and outcome.checkpoint:
        parts.append(_("r: resume"))
    text = _run_state(outcome, _("Run {state}"))
    text.append(SEP + SEP.join(parts))
    return text
