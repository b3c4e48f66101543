"""`lora-tui sweep FILE.toml [--output DIR] [--dry-run]`: a grid of settings, each point checked against the GPU,
run one after another, ending with a results table sorted by best eval loss.

FILE has a [plan] table (any run-file keys, shared by every point) and a [grid] table of lists, e.g.
`lora_r = [8, 16]` and `learning_rate = [5e-5, 2e-4]`. Points whose memory estimate exceeds the GPU are dropped
and listed with the reason. Run it again to continue: finished points are never rerun, a half-run one resumes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from lora_tui.cells import pad
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, english, pgettext

DESCRIPTION = N_("`lora-tui sweep FILE.toml [--output DIR] [--dry-run]`: a grid of settings, each point checked "
                 "against the GPU, run one after another, ending with a results table sorted by best eval loss.")
"""The help's description (argparse joins its lines)."""
EPILOG = N_("FILE has a [plan] table (any run-file keys, shared by every point) and a [grid] table of lists, e.g. "
            "`lora_r = [8, 16]` and `learning_rate = [5e-5, 2e-4]`. Points whose memory estimate exceeds the GPU are "
            "dropped and listed with the reason. Run it again to continue: finished points are never rerun, a "
            "half-run one resumes.")
"""The help's epilog."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `sweep` subcommand."""
    from lora_tui.cli.flags import gb_size
    from lora_tui.core.sweep import MAX_POINTS

    p = sub.add_parser("sweep", help=_("run a grid of settings one after another and compare the results"),
                       description=_(DESCRIPTION), epilog=_(EPILOG))
    p.add_argument("file", metavar="FILE.toml", help=_("sweep file: a [plan] table and a [grid] table of lists"))
    p.add_argument("--output", metavar="DIR", default=None,
                   help=_("sweep directory (default: RUNS_ROOT/sweep-NAME; the same one continues the sweep)"))
    p.add_argument("--dry-run", action="store_true", help=_("list the points, their memory and what is dropped; "
                                                            "run nothing"))
    p.add_argument("--yes", action="store_true", help=_("run a grid of more than {count} points").format(
        count=MAX_POINTS))
    p.add_argument("--vram-gb", type=gb_size, default=None,
                   help=_("plan for this much GPU memory instead of detecting"))
    p.set_defaults(func=run)


def _vram(vram_gb: float | None) -> int | None:
    if vram_gb is not None:
        return int(vram_gb * 1e9)
    from lora_tui.core.hardware.detect import detect_hardware

    return detect_hardware().usable_vram_bytes


def run(args: argparse.Namespace) -> int:
    """Plan the points; print them (dry run) or run the ones left, then the results."""
    from lora_tui.core import sweep

    spec = sweep.load_sweep(args.file)
    if spec.size() > sweep.MAX_POINTS and not args.yes:
        raise UserError(_("{file}: [grid] ({settings}) makes {count} points, more than {limit}; pass --yes to run "
                          "them all, or shorten a list").format(file=args.file, settings=", ".join(spec.grid),
                                                                count=spec.size(), limit=sweep.MAX_POINTS))
    sweep_dir = (Path(args.output).expanduser() if args.output else sweep.default_sweep_dir(args.file)).absolute()
    again = sweep.check_sweep_dir(sweep_dir, spec)
    vram = _vram(args.vram_gb)
    points = sweep.plan_points(spec, sweep_dir, vram_bytes=vram)
    print((_("sweep {file}: {count} point(s) in {dir} (continuing)") if again else
           _("sweep {file}: {count} point(s) in {dir}")).format(file=args.file, count=len(points), dir=sweep_dir))
    for line in point_lines(points):
        print(line)
    kept = [p for p in points if p.state != "dropped"]
    if not kept:
        raise UserError(_("{file}: no point of the sweep fits the GPU ({count} dropped); lower the batch size, the "
                          "sequence length or r, or add load_in_4bit = true to [plan]").format(
                              file=args.file, count=len(points)))
    if args.dry_run:
        return 0
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sweep.write_state(sweep_dir, args.file, spec, points)
    for number, point in enumerate(kept, start=1):
        print(f"\n[{number}/{len(kept)}] {point.name}", flush=True)
        if _run_point(point, sweep_dir, vram) == 130:
            sweep.write_state(sweep_dir, args.file, spec, points)
            again_cmd = shlex.join(["lora-tui", "sweep", args.file, "--output", str(sweep_dir)])
            print(_("lora-tui: sweep interrupted; `{command}` continues it (finished points are kept)").format(
                command=again_cmd), file=sys.stderr)
            return 130
        sweep.write_state(sweep_dir, args.file, spec, points)
    return _finish(sweep_dir, points)


def point_lines(points: list[Any]) -> list[str]:
    """One line per point: its values, its memory estimate, and why it is dropped."""
    from lora_tui.core.plan import fmt_value
    from lora_tui.core.units import fmt_bytes

    lines = []
    for p in points:
        values = " ".join(f"{k}={fmt_value(v)}" for k, v in p.values.items())
        verdict = pgettext("memory verdict", p.verdict.replace("_", " ")) if p.verdict else p.verdict
        memory = ("  " + _("~{memory} ({verdict})").format(memory=fmt_bytes(p.estimate_bytes), verdict=verdict)
                  if p.estimate_bytes is not None else "")
        dropped = "  " + _("DROPPED: {reason}").format(reason=p.reason) if p.state == "dropped" else ""
        lines.append(f"  {pad(p.name, 40)} {values}{memory}{dropped}")
    return lines


def _run_point(point: Any, sweep_dir: Path, vram: int | None) -> int:
    """Run (or continue) one point to its end; its state is set from the run's status. Returns follow's status."""
    from lora_tui.cli.train import follow
    from lora_tui.core import launcher, runs, sweep
    from lora_tui.core.follow import log_size

    run_dir = sweep_dir / point.name
    _wait_while_live(run_dir)
    with english():  # the run's files (its reasons, its memory estimate) are English whatever the language
        resolved = sweep.launch_for(point, sweep_dir, vram_bytes=vram)
    if resolved is None:
        point.state, point.reason = "finished", None
        print(_("  finished earlier: kept, not rerun"))
        return 0
    for warning in resolved.warnings:
        print(_("lora-tui: warning: {warning}").format(warning=warning), file=sys.stderr)
    offset = log_size(run_dir) if resolved.mode == "resume" else 0
    run_dir, proc = launcher.launch(resolved)
    how = _("resuming from {checkpoint}").format(checkpoint=Path(resolved.resume_from).name) \
        if resolved.resume_from else pgettext("run mode", resolved.mode + " run")
    print(_("  run: {dir}  pid: {pid}  {how}").format(dir=run_dir, pid=proc.pid, how=how), flush=True)
    code = follow(run_dir, proc, offset=offset)
    status = runs.read_status(run_dir)
    point.state = status.effective_state() if status is not None else "unknown"
    point.reason = status.error if status is not None else None
    return code


def _wait_while_live(run_dir: Path, poll_s: float = 0.5) -> None:
    """A point whose run still goes on (the sweep that started it was killed): wait for it to end."""
    from lora_tui.core import runs

    status = runs.read_status(run_dir)
    if status is None or status.effective_state() not in runs.LIVE_STATES:
        return
    print(_("  its run is still going (pid {pid}); waiting for it to end").format(pid=status.pid), flush=True)
    while status is not None and status.effective_state() in runs.LIVE_STATES:
        time.sleep(poll_s)
        status = runs.read_status(run_dir)


def _finish(sweep_dir: Path, points: list[Any]) -> int:
    """The results table (printed, results.csv, results.json); 0 when every point that ran finished."""
    from lora_tui.cli.runs import render_comparison
    from lora_tui.core import sweep

    comparison = sweep.results(sweep_dir, points)
    sweep.write_results(sweep_dir, comparison, points)
    print("\n" + _("results, best eval loss first:"))
    print(render_comparison(comparison))
    for p in points:
        if p.state == "dropped":
            print(_("dropped {name}: {reason}").format(name=p.name, reason=p.reason))
    print(_("written: {csv}, {json}").format(csv=sweep_dir / sweep.RESULTS_CSV, json=sweep_dir / sweep.RESULTS_JSON))
    dirs = " ".join(shlex.quote(r.run) for r in comparison.runs)
    if len(comparison.runs) >= 2:
        print(_("curves: {command}").format(command=f"lora-tui runs compare {dirs} --tui"))
    failed = [p for p in points if p.state not in ("finished", "dropped")]
    return 1 if failed else 0
