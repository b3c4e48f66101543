"""`lora-tui runs [list [ROOT]] | show RUN | compare RUN RUN... | stop RUN | logs RUN [-f] | diagnose RUN`: the runs
on this machine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lora_tui.cells import pad
from lora_tui.cells import table as cell_table
from lora_tui.cells import width as cells_width
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, english, pgettext


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `runs` subcommand and its actions."""
    p = sub.add_parser("runs", help=_("list, show, stop and follow training runs"),
                       description=_("the runs on this machine."))
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help=_("runs under ROOT (default: $LORA_TUI_RUNS or ./runs)"))
    ls.add_argument("root", nargs="?", help=_("directory to search"))
    ls.add_argument("--json", action="store_true", help=_("print JSON"))
    show = actions.add_parser("show", help=_("status, settings and last metrics of one run"))
    show.add_argument("run", help=_("run directory"))
    show.add_argument("--json", action="store_true", help=_("print JSON"))
    cmp = actions.add_parser("compare", help=_("several runs side by side: the settings that differ and the results"))
    cmp.add_argument("runs", nargs="+", metavar="RUN", help=_("run directories (two or more)"))
    cmp.add_argument("--json", action="store_true",
                     help=_("print JSON: {{runs: [{{run, settings, final_loss, best_eval_loss, best_step, steps, "
                            "tokens_per_second, wall_seconds, ...}}], differences: [setting names]}}").format())
    cmp.add_argument("--tui", action="store_true", help=_("open the TUI's Compare view (overlaid loss curves)"))
    stop = actions.add_parser("stop", help=_("ask a run to save and stop at its next step"))
    stop.add_argument("run", help=_("run directory"))
    logs = actions.add_parser("logs", help=_("print run.log"))
    logs.add_argument("run", help=_("run directory"))
    logs.add_argument("-f", "--follow", action="store_true", help=_("keep printing until the run ends"))
    diag = actions.add_parser("diagnose", help=_("the troubleshooting symptoms in a run's metrics, with remedies"))
    diag.add_argument("run", help=_("run directory"))
    diag.add_argument("--json", action="store_true",
                      help=_("print JSON: {{symptoms: [{{key, title, evidence, remedies}}]}}").format())
    p.set_defaults(func=run, action=None, root=None, json=False)


SHOW_LABELS = {"run": N_("run"), "state": N_("state"), "step": N_("step"), "max_steps": N_("max steps"),
               "last_loss": N_("last loss"), "error": N_("error"), "last_checkpoint": N_("last checkpoint"),
               "started_at": N_("started at")}
"""`runs show`'s name for each summary key (the key itself when it has none)."""


def _run_dir(text: str) -> Path:
    from lora_tui.core import runs

    path = Path(text).expanduser()
    if not path.is_dir():
        raise UserError(_("{path}: no such run directory").format(path=text))
    if not (path / runs.STATUS_FILE).is_file() and not (path / runs.RUN_FILE).is_file():
        raise UserError(_("{path}: not a run directory (no status.json or run.toml)").format(path=text))
    return path


def _summary(path: Path) -> dict[str, object]:
    from lora_tui.core.run_summary import summarize

    return summarize(path).to_dict()


def _readable_status(path: Path) -> None:
    """UserError when the run's status.json is missing or cannot be read: its state would be a guess."""
    from lora_tui.core import runs

    status_file = path / runs.STATUS_FILE
    if not status_file.exists():
        raise UserError(_("{path}: no {file}: the run was never started, or its status file was deleted; its state "
                          "is unknown").format(path=path, file=runs.STATUS_FILE))
    if runs.read_status(path) is None:
        raise UserError(_("{path}: unreadable or damaged (not a JSON object); the run's state is unknown").format(
            path=status_file))


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action (default: list)."""
    action = args.action or "list"
    if action == "list":
        return _list(args.root, args.json)
    if action == "compare":
        return _compare(args.runs, args.json, args.tui)
    path = _run_dir(args.run)
    if action == "show":
        _readable_status(path)
        return _show(path, args.json)
    if action == "stop":
        return _stop(path)
    if action == "diagnose":
        return _diagnose(path, args.json)
    return _logs(path, args.follow)


def _diagnose(path: Path, as_json: bool) -> int:
    """What the monitor's troubleshooting shows, for a run directory: silent (exit 0) when nothing is wrong."""
    from lora_tui.core.symptoms import diagnose_run, symptom_dict

    if as_json:
        with english():  # JSON output is English whatever the language
            print(json.dumps({"symptoms": [symptom_dict(s) for s in diagnose_run(path)]}, indent=2))
        return 0
    for symptom in diagnose_run(path):
        print(_("{title}: {evidence}").format(title=symptom.title, evidence=symptom.evidence))
        for remedy in symptom.remedies:
            print(_("  - {remedy}  [{source}]").format(remedy=remedy.description, source=remedy.source))
    return 0


def _compare(paths: list[str], as_json: bool, tui: bool) -> int:
    """The runs side by side (`core.compare`): JSON, a table, or the TUI's Compare view."""
    from lora_tui.core.compare import compare_runs

    comparison = compare_runs(paths)
    if as_json:
        print(json.dumps(comparison.to_dict(), indent=2, default=str))
        return 0
    if tui:
        from lora_tui.ui.app import make_app

        app = make_app(start="runs", open_compare=[Path(r.run) for r in comparison.runs])
        app.run()
        return int(app.return_code or 0)
    print(render_comparison(comparison))
    return 0


def render_comparison(comparison: Any) -> str:
    """The comparison as an aligned text table, then the settings that differ (`lora-tui sweep` prints it too)."""
    from lora_tui.core.compare import table

    header, rows = table(comparison)
    lines = cell_table([header, *rows], "ll" + "r" * (len(header) - 2))
    differ = ", ".join(comparison.differences) or _("none (the runs have the same settings)")
    return "\n".join([*lines, "", _("settings that differ: {settings}").format(settings=differ)])


def _list(root: str | None, as_json: bool) -> int:
    from lora_tui.core import runs
    from lora_tui.core.paths import output_root

    base = Path(root).expanduser() if root else output_root()
    if root and not base.is_dir():
        raise UserError(_("{path}: no such directory").format(path=root))
    from lora_tui.core.run_summary import best_eval_text, summarize

    found = [summarize(p) for p in runs.iter_run_dirs(base)]
    if as_json:
        print(json.dumps([s.to_dict() for s in found], indent=2))
        return 0
    if not found:
        print(_("no runs under {root}").format(root=base))
        return 0
    print(_("runs under {root}:").format(root=base))
    rows = [[_("state"), _("step"), _("loss"), _("best eval @ step"), _("run")]]
    for s in found:
        step = f"{s.step}/{s.max_steps}" if s.max_steps else str(s.step)
        loss = f"{s.last_loss:.4f}" if s.last_loss is not None else "-"
        name = Path(s.run).relative_to(base) if Path(s.run).is_relative_to(base) else s.run
        rows.append([pgettext("run state", s.state), step, loss, best_eval_text(s), str(name)])
    widths = [max(w, cells_width(label)) for w, label in zip((9, 11, 8, 16), rows[0], strict=False)]
    for r in rows:  # state 9 cells, step 11, loss 8, best eval 16 (wider when a heading is), then the name
        print(" ".join([pad(r[0], widths[0]), *(pad(c, w, "right") for c, w in zip(r[1:4], widths[1:],
                                                                                    strict=True))]) + f"  {r[4]}")
    return 0


def _shown(key: str, value: object) -> object:
    """A summary value as `runs show` prints it: the state in the language shown, the start as a local time, the
    loss to four decimals (JSON keeps them as they are)."""
    from lora_tui.cli.adapters import date_text

    if key == "state":
        return pgettext("run state", str(value))
    if key == "started_at" and isinstance(value, (int, float)):
        return date_text(value)
    return f"{value:.4f}" if key == "last_loss" and isinstance(value, float) else value


def _show(path: Path, as_json: bool) -> int:
    from lora_tui.core import run_files, run_world, runs

    summary = _summary(path)
    info = run_files.read_training_info(path)  # None when missing or damaged
    from lora_tui.core.plan import read_run_plan

    world = run_world.world_of(runs.read_status(path), read_run_plan(path / runs.RUN_FILE),
                               info.world_size if info is not None else None)
    ranks = run_world.read_ranks(path)
    if as_json:
        training: dict[str, Any] | None = info.to_dict() if info is not None else None
        shape = {"size": world.size, "nodes": world.nodes} if world is not None else None
        print(json.dumps({**summary, "world": shape, "ranks": [asdict(r) for r in ranks] if ranks else None,
                          "training_info": training}, indent=2, default=str))
        return 0
    for key, value in summary.items():
        if value is not None and key not in ("best_eval_loss", "best_eval_step"):
            print(f"{pad(_(SHOW_LABELS[key]) if key in SHOW_LABELS else key, 16)} {_shown(key, value)}")
    if world is not None:
        print(f"{pad(_('world size'), 16)} {run_world.world_shape(world)}")
    for node in run_world.node_lines(ranks):  # each machine's peak memory, and each of its GPUs'
        print(f"  {node}")
    if isinstance(summary["best_eval_loss"], float):
        print(_("best eval loss {loss} at step {step}").format(loss=f"{summary['best_eval_loss']:.4f}",
                                                              step=summary["best_eval_step"]))
    if (path / runs.RUN_FILE).is_file():
        print("\n" + (path / runs.RUN_FILE).read_text(encoding="utf-8").rstrip())
    if info is None and (path / runs.INFO_FILE).exists():
        print("\n" + _("{file} is unreadable or damaged (the run may have been killed while writing it)").format(
            file=runs.INFO_FILE))
    if info is not None:
        from lora_tui.core.adapter_report import adapter_choice_line

        print("\n" + _("final loss {final}, best loss {best}, best eval loss {best_eval}, tokens seen {tokens}, "
                       "steps {steps}").format(final=info.final_loss, best=info.best_loss,
                                               best_eval=info.best_eval_loss, tokens=info.tokens_seen,
                                               steps=info.steps))
        chosen = adapter_choice_line(info.adapter_step, info.adapter_kept, info.adapter_eval_loss)
        if chosen:
            print(_("adapter: {line}").format(line=chosen))
        speed = _throughput(info)
        if speed:
            print(_("throughput: {line}").format(line=speed))
    line = _memory(path, info)
    if line:
        print(_("memory: {line}").format(line=line))
    return 0


def _throughput(info: Any) -> str | None:
    """`1,234 useful tok/s (non-padding), 600 trained tok/s, padding 12%; first step 5.3 s after the start`."""
    parts = []
    loop = info.timings.train_loop_seconds if info.timings is not None else None
    if info.tokens_per_second:
        parts.append(_("{rate} useful tok/s (non-padding)").format(rate=f"{info.tokens_per_second:,.0f}"))
    if info.trained_tokens and loop:
        parts.append(_("{rate} trained tok/s (loss-carrying)").format(rate=f"{info.trained_tokens / loop:,.0f}"))
    if info.padding_share is not None:
        parts.append(_("padding {share}").format(share=f"{info.padding_share:.0%}"))
    text = _(", ").join(parts)
    timings = info.timings
    if timings is not None and timings.first_step_at is not None and timings.started_at is not None:
        first = _("first step {seconds} s after the start").format(
            seconds=f"{timings.first_step_at - timings.started_at:.1f}")
        text = _("{throughput}; {first}").format(throughput=text, first=first) if text else first
    return text or None


def _memory(path: Path, info: Any) -> str | None:
    """Estimated against measured peak memory: training_info.json's, else launch.json's estimate and the
    measurement status.json holds while the run goes on."""
    from lora_tui.core import run_files, runs
    from lora_tui.core.memory_check import memory_line

    if info is not None and info.memory is not None:
        return memory_line(info.memory.estimate, info.memory.measured)
    launch = run_files.read_launch_info(path)
    status = runs.read_status(path)
    measured = status.extra.get("memory") if status is not None else None
    return memory_line(launch.memory_estimate if launch else None, measured if isinstance(measured, dict) else None)


def _stop(path: Path) -> int:
    from lora_tui.core import runs

    if runs.request_stop(path):
        print(_("stop requested: {path} saves a checkpoint and the adapter at its next step").format(path=path))
        return 0
    status = runs.read_status(path)
    if status is None:
        _readable_status(path)
    raise UserError(_("{path}: not running (state {state})").format(
        path=path, state=pgettext("run state", status.effective_state() if status else "unknown")))


def _logs(path: Path, follow: bool, poll_s: float = 0.2) -> int:
    """Print run.log; with `follow`, keep printing what the run adds until it is no longer live."""
    from lora_tui.core import runs
    from lora_tui.core.follow import RunFollower

    status = runs.read_status(path)
    live = status is not None and status.effective_state() in runs.LIVE_STATES
    if not (path / runs.LOG_FILE).is_file() and not (follow and live):
        raise UserError(_("{path}: no {file}: the run has not started (or its log was deleted)").format(
            path=path, file=runs.LOG_FILE))
    follower = RunFollower(path, every_line=True)
    while True:
        follower.copy_log(sys.stdout)
        status = follower.read_status()
        if not follow or status is None or status.effective_state() not in ("starting", "running"):
            follower.copy_log(sys.stdout, final=True)  # what it wrote before it ended, its last line included
            return 0
        time.sleep(poll_s)
