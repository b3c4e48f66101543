"""`lora-tui runs [list [ROOT]] | show RUN | compare RUN RUN... | stop RUN | logs RUN [-f] | diagnose RUN`: the runs
on this machine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lora_tui.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `runs` subcommand and its actions."""
    p = sub.add_parser("runs", help="list, show, stop and follow training runs",
                       description=__doc__.split(":", 1)[1].strip())
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help="runs under ROOT (default: $LORA_TUI_RUNS or ./runs)")
    ls.add_argument("root", nargs="?", help="directory to search")
    ls.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", help="status, settings and last metrics of one run")
    show.add_argument("run", help="run directory")
    show.add_argument("--json", action="store_true", help="print JSON")
    cmp = actions.add_parser("compare", help="several runs side by side: the settings that differ and the results")
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run directories (two or more)")
    cmp.add_argument("--json", action="store_true",
                     help="print JSON: {runs: [{run, settings, final_loss, best_eval_loss, best_step, steps, "
                          "tokens_per_second, wall_seconds, ...}], differences: [setting names]}")
    cmp.add_argument("--tui", action="store_true", help="open the TUI's Compare view (overlaid loss curves)")
    stop = actions.add_parser("stop", help="ask a run to save and stop at its next step")
    stop.add_argument("run", help="run directory")
    logs = actions.add_parser("logs", help="print run.log")
    logs.add_argument("run", help="run directory")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    diag = actions.add_parser("diagnose", help="the troubleshooting symptoms in a run's metrics, with remedies")
    diag.add_argument("run", help="run directory")
    diag.add_argument("--json", action="store_true", help="print JSON: {symptoms: [{key, title, evidence, remedies}]}")
    p.set_defaults(func=run, action=None, root=None, json=False)


def _run_dir(text: str) -> Path:
    from lora_tui.core import runs

    path = Path(text).expanduser()
    if not path.is_dir():
        raise UserError(f"{text}: no such run directory")
    if not (path / runs.STATUS_FILE).is_file() and not (path / runs.RUN_FILE).is_file():
        raise UserError(f"{text}: not a run directory (no status.json or run.toml)")
    return path


def _summary(path: Path) -> dict[str, object]:
    from lora_tui.core.run_summary import summarize

    return summarize(path).to_dict()


def _readable_status(path: Path) -> None:
    """UserError when the run's status.json is missing or cannot be read: its state would be a guess."""
    from lora_tui.core import runs

    status_file = path / runs.STATUS_FILE
    if not status_file.exists():
        raise UserError(f"{path}: no {runs.STATUS_FILE}: the run was never started, or its status file was "
                        "deleted; its state is unknown")
    if runs.read_status(path) is None:
        raise UserError(f"{status_file}: unreadable or damaged (not a JSON object); the run's state is unknown")


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

    found = diagnose_run(path)
    if as_json:
        print(json.dumps({"symptoms": [symptom_dict(s) for s in found]}, indent=2))
        return 0
    for symptom in found:
        print(f"{symptom.title}: {symptom.evidence}")
        for remedy in symptom.remedies:
            print(f"  - {remedy.description}  [{remedy.source}]")
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
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             .rstrip() for row in (header, *rows)]
    differ = ", ".join(comparison.differences) or "none (the runs have the same settings)"
    return "\n".join([*lines, "", f"settings that differ: {differ}"])


def _list(root: str | None, as_json: bool) -> int:
    from lora_tui.core import runs
    from lora_tui.core.paths import output_root

    base = Path(root).expanduser() if root else output_root()
    if root and not base.is_dir():
        raise UserError(f"{root}: no such directory")
    from lora_tui.core.run_summary import best_eval_text, summarize

    found = [summarize(p) for p in runs.iter_run_dirs(base)]
    if as_json:
        print(json.dumps([s.to_dict() for s in found], indent=2))
        return 0
    if not found:
        print(f"no runs under {base}")
        return 0
    print(f"runs under {base}:")
    print(f"{'state':9s} {'step':>11s} {'loss':>8s} {'best eval @ step':>16s}  run")
    for s in found:
        step = f"{s.step}/{s.max_steps}" if s.max_steps else str(s.step)
        loss = f"{s.last_loss:.4f}" if s.last_loss is not None else "-"
        name = Path(s.run).relative_to(base) if Path(s.run).is_relative_to(base) else s.run
        print(f"{s.state:9s} {step:>11s} {loss:>8s} {best_eval_text(s):>16s}  {name}")
    return 0


def _show(path: Path, as_json: bool) -> int:
    from lora_tui.core import run_files, runs

    summary = _summary(path)
    info = run_files.read_training_info(path)  # None when missing or damaged
    if as_json:
        training: dict[str, Any] | None = info.to_dict() if info is not None else None
        print(json.dumps({**summary, "training_info": training}, indent=2, default=str))
        return 0
    for key, value in summary.items():
        if value is not None and key not in ("best_eval_loss", "best_eval_step"):
            print(f"{key:16s} {value}")
    if isinstance(summary["best_eval_loss"], float):
        print(f"best eval loss {summary['best_eval_loss']:.4f} at step {summary['best_eval_step']}")
    if (path / runs.RUN_FILE).is_file():
        print("\n" + (path / runs.RUN_FILE).read_text(encoding="utf-8").rstrip())
    if info is None and (path / runs.INFO_FILE).exists():
        print(f"\n{runs.INFO_FILE} is unreadable or damaged (the run may have been killed while writing it)")
    if info is not None:
        from lora_tui.core.adapter_report import adapter_choice_line

        print(f"\nfinal loss {info.final_loss}, best loss {info.best_loss}, best eval loss {info.best_eval_loss}, "
              f"tokens seen {info.tokens_seen}, steps {info.steps}")
        chosen = adapter_choice_line(info.adapter_step, info.adapter_kept, info.adapter_eval_loss)
        if chosen:
            print(f"adapter: {chosen}")
        speed = _throughput(info)
        if speed:
            print(f"throughput: {speed}")
    line = _memory(path, info)
    if line:
        print(f"memory: {line}")
    return 0


def _throughput(info: Any) -> str | None:
    """`1,234 useful tok/s (non-padding), 600 trained tok/s, padding 12%; first step 5.3 s after the start`."""
    parts = []
    loop = info.timings.train_loop_seconds if info.timings is not None else None
    if info.tokens_per_second:
        parts.append(f"{info.tokens_per_second:,.0f} useful tok/s (non-padding)")
    if info.trained_tokens and loop:
        parts.append(f"{info.trained_tokens / loop:,.0f} trained tok/s (loss-carrying)")
    if info.padding_share is not None:
        parts.append(f"padding {info.padding_share:.0%}")
    text = ", ".join(parts)
    timings = info.timings
    if timings is not None and timings.first_step_at is not None and timings.started_at is not None:
        text += f"{'; ' if text else ''}first step {timings.first_step_at - timings.started_at:.1f} s after the start"
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
        print(f"stop requested: {path} saves a checkpoint and the adapter at its next step")
        return 0
    status = runs.read_status(path)
    if status is None:
        _readable_status(path)
    raise UserError(f"{path}: not running (state {status.effective_state() if status else 'unknown'})")


def _logs(path: Path, follow: bool, poll_s: float = 0.2) -> int:
    """Print run.log; with `follow`, keep printing what the run adds until it is no longer live."""
    from lora_tui.core import runs
    from lora_tui.core.follow import RunFollower

    status = runs.read_status(path)
    live = status is not None and status.effective_state() in runs.LIVE_STATES
    if not (path / runs.LOG_FILE).is_file() and not (follow and live):
        raise UserError(f"{path}: no {runs.LOG_FILE}: the run has not started (or its log was deleted)")
    follower = RunFollower(path, every_line=True)
    while True:
        follower.copy_log(sys.stdout)
        status = follower.read_status()
        if not follow or status is None or status.effective_state() not in ("starting", "running"):
            follower.copy_log(sys.stdout, final=True)  # what it wrote before it ended, its last line included
            return 0
        time.sleep(poll_s)
