"""A sweep: a grid of settings expanded into points, each resolved by the advisor, its memory estimated, the points
that cannot fit the GPU dropped with their reason, the rest run one after another as ordinary run directories.

A sweep file is TOML:

    [plan]                       # any run-file keys, shared by every point
    model = "demo"
    max_steps = 30
    [grid]                       # lists of values of any plan key; every combination is a point
    lora_r = [8, 16, 32]
    learning_rate = [5e-5, 2e-4]

The sweep directory holds `sweep.json` (the points and what became of each), one run directory per point
(`runs`, the monitor and `--resume` work on each), and at the end `results.csv` and `results.json`, sorted by best
eval loss, then final training loss. Run again, a sweep skips its finished points (never rerun), resumes a
half-run one from its newest checkpoint (or starts it over when it has none) and runs the rest. The CLI
(`lora-tui sweep`) drives the points; this module decides everything about them.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import runs
from lora_tui.core.compare import Comparison, differences, read_run, sort_key
from lora_tui.core.plan import TrainingPlan, fmt_value, parse_target_modules
from lora_tui.errors import UserError
from lora_tui.i18n import N_, Phrase, _

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_POINTS = 64
"""A grid of more points than this needs `--yes`."""
STATE_FILE = "sweep.json"
"""The sweep's points and their outcome, in the sweep directory."""
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
TABLES = ("plan", "grid")
"""The tables a sweep file may have."""
_PER_POINT = ("output",)
"""Keys a sweep file cannot set: every point has its own run directory under the sweep directory."""


@dataclass
class SweepSpec:
    """A sweep file, checked: the shared settings and the grid."""

    plan: dict[str, Any]
    """Settings of every point (a run file's [plan] keys)."""
    grid: dict[str, list[Any]]
    """Setting -> the values it takes, in the file's order."""

    def size(self) -> int:
        """How many points the grid has."""
        count = 1
        for values in self.grid.values():
            count *= len(values)
        return count

    def to_dict(self) -> dict[str, Any]:
        """As sweep.json records it (a rerun checks it is the same sweep)."""
        return {"plan": self.plan, "grid": self.grid}


@dataclass
class Point:
    """One combination of the grid."""

    name: str
    """Its run directory's name inside the sweep directory."""
    values: dict[str, Any]
    """The grid's values at this point."""
    state: str = "pending"
    """pending, dropped, or the state its run ended in (finished, failed, stopped, oom, lost)."""
    reason: str | None = None
    """Why it was dropped (cannot fit: a `Phrase`, English in sweep.json), or its run's error."""
    estimate_bytes: int | None = None
    """Its memory estimate."""
    verdict: str | None = None
    """The estimate against the VRAM: fits, tight, will_not_fit or unknown."""
    resolved: Any = field(default=None, repr=False, compare=False)
    """Its ResolvedPlan, in the language shown when it was planned (not recorded)."""
    given: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The settings it was resolved from (`given_for`; not recorded)."""

    def to_dict(self) -> dict[str, Any]:
        """As sweep.json records it."""
        return {"name": self.name, "values": self.values, "state": self.state, "reason": self.reason,
                "estimate_bytes": self.estimate_bytes, "verdict": self.verdict}


# ---- the sweep file --------------------------------------------------------------------------------------


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; UserError (one line, naming the key) for anything wrong."""
    from lora_tui.core.textfiles import read_regular_text

    p = Path(path)
    try:
        doc = tomllib.loads(read_regular_text(p, str(p), N_("sweep file")))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(_("{path}: not valid TOML ({error})").format(path=p, error=exc)) from None
    unknown = sorted(set(doc) - set(TABLES))
    if unknown:
        raise UserError(_("{path}: unknown key(s) {keys}; a sweep file has a [plan] and a [grid] table").format(
            path=p, keys=", ".join(unknown)))
    plan, grid = doc.get("plan", {}), doc.get("grid", {})
    for name, table in (("plan", plan), ("grid", grid)):
        if not isinstance(table, dict):
            raise UserError(_("{path}: [{table}] must be a table").format(path=p, table=name))
    for key, value in plan.items():
        _check_key(p, "plan", key)
        _check_value(p, f"plan.{key}", key, value)
    if not grid:
        raise UserError(_("{path}: [grid] is empty or missing; give at least one setting a list of values").format(
            path=p))
    for key, values in grid.items():
        _check_key(p, "grid", key)
        if not isinstance(values, list):
            raise UserError(_("{path}: grid.{key} must be a list of values, e.g. {key} = [{example}]").format(
                path=p, key=key, example=_example(key)))
        if not values:
            raise UserError(_("{path}: grid.{key} is an empty list; give it at least one value").format(path=p,
                                                                                                      key=key))
        for value in values:
            _check_value(p, f"grid.{key}", key, value)
    return SweepSpec(plan=dict(plan), grid={k: list(v) for k, v in grid.items()})


def _check_key(path: Path, table: str, key: str) -> None:
    if key in _PER_POINT:
        raise UserError(_("{path}: {table}.{key}: every point has its own run directory inside the sweep directory; "
                          "choose the sweep directory with --output").format(path=path, table=table, key=key))
    if key not in TrainingPlan.field_names():
        raise UserError(_("{path}: {table}.{key} is not a setting (known: {known})").format(
            path=path, table=table, key=key, known=", ".join(TrainingPlan.field_names())))


_KIND_OK = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
}
_KIND_WORDS = {"int": N_("a whole number"), "float": N_("a number"), "bool": N_("true or false"),
               "str": N_("a string"), "list": N_("a list of module names or a pattern name")}


def _check_value(path: Path, where: str, key: str, value: Any) -> None:
    kind = TrainingPlan.field_kind(key)
    if not _KIND_OK[kind](value):
        raise UserError(_("{path}: {where} = {value} must be {kind}").format(path=path, where=where,
                                                                           value=repr(value),
                                                                           kind=_(_KIND_WORDS[kind])))


def _example(key: str) -> str:
    return ", ".join(fmt_value(v) for v in {"int": (8, 16), "float": (5e-5, 2e-4), "bool": (True, False)}.get(
        TrainingPlan.field_kind(key), ("a", "b")))


def expand(spec: SweepSpec) -> list[Point]:
    """Every combination of the grid, the first key varying slowest; each named after its index and values."""
    keys = list(spec.grid)
    points = []
    for index, combo in enumerate(itertools.product(*(spec.grid[k] for k in keys)), start=1):
        values = dict(zip(keys, combo, strict=True))
        points.append(Point(name=point_name(index, values), values=values))
    return points


def point_name(index: int, values: dict[str, Any]) -> str:
    """`03-lora_r16-learning_rate2e-4`: a directory name that says what the point is."""
    parts = [f"{index:02d}", *(f"{k}{fmt_value(v)}" for k, v in values.items())]
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", "-".join(parts))[:120]


def given_for(spec: SweepSpec, point: Point, sweep_dir: Path) -> dict[str, Any]:
    """The settings the resolver gets for a point: the shared ones, the point's, and its run directory (a target
    pattern name, such as `standard`, as the resolver's pattern choice)."""
    from lora_tui.core.resolve import PATTERN
    from lora_tui.core.targets import pattern_names

    given = {**spec.plan, **point.values, "output": str(sweep_dir / point.name)}
    targets = given.pop("target_modules", None)
    if isinstance(targets, str) and targets.strip() in pattern_names():
        given[PATTERN] = targets.strip()
    elif targets is not None:
        given["target_modules"] = parse_target_modules(targets) if isinstance(targets, str) else list(targets)
    return given


# ---- planning: resolve, estimate, drop what cannot fit ---------------------------------------------------


def plan_points(spec: SweepSpec, sweep_dir: Path, *, vram_bytes: int | None) -> list[Point]:
    """Expand and resolve every point with the advisor and estimate its memory; a point whose estimate exceeds
    the VRAM is dropped with the reason. A setting the resolver refuses is a UserError naming the point."""
    from lora_tui.core.launcher import resolve_plan
    from lora_tui.core.memory import plan_estimate
    from lora_tui.core.units import fmt_bytes

    points = expand(spec)
    for point in points:
        point.given = given_for(spec, point, sweep_dir)
        try:
            resolved = resolve_plan(point.given, vram_bytes=vram_bytes)
        except UserError as exc:
            raise UserError(_("point {name}: {error}").format(name=point.name, error=exc)) from None
        point.resolved = resolved
        inputs = resolved.inputs
        report = inputs.data_report.at(resolved.plan.max_seq_length) if inputs.data_report is not None else None
        if inputs.inventory is None:
            continue  # no inventory for this model: no estimate to drop it for
        try:
            estimate = plan_estimate(inputs.inventory, resolved.plan, vram_bytes,
                                     lengths=report.token_stats if report is not None else None)
        except (UserError, ValueError):
            continue  # no estimate for this model: nothing to drop it for
        point.estimate_bytes, point.verdict = estimate.total_bytes, estimate.verdict
        if estimate.verdict == "will_not_fit":
            point.state = "dropped"
            point.reason = Phrase("cannot fit: needs about {need}, the GPU has {vram}",
                                  need=fmt_bytes(estimate.total_bytes), vram=fmt_bytes(vram_bytes))
    return points


# ---- the sweep directory ---------------------------------------------------------------------------------


def default_sweep_dir(sweep_file: str | Path, root: Path | None = None) -> Path:
    """`RUNS_ROOT/sweep-NAME` for NAME.toml: beside the runs, the same directory on every rerun."""
    from lora_tui.core.paths import output_root, run_slug

    return (root if root is not None else output_root()) / f"sweep-{run_slug(Path(sweep_file).stem)}"


def read_state(sweep_dir: Path) -> dict[str, Any] | None:
    """sweep.json, or None when there is none (or it is damaged)."""
    return runs.read_json_object(sweep_dir / STATE_FILE)


def check_sweep_dir(sweep_dir: Path, spec: SweepSpec) -> bool:
    """Whether the directory already holds this sweep (a rerun); UserError when it holds anything else."""
    if not sweep_dir.exists():
        return False
    if not sweep_dir.is_dir():
        raise UserError(_("--output {path}: exists and is not a directory").format(path=sweep_dir))
    state = read_state(sweep_dir)
    if state is None:
        if any(sweep_dir.iterdir()):
            raise UserError(_("--output {path}: not empty and not a sweep directory (no {file}); choose another "
                              "--output").format(path=sweep_dir, file=STATE_FILE))
        return False
    if state.get("spec") != json.loads(json.dumps(spec.to_dict())):
        raise UserError(_("--output {path}: holds a different sweep (its {file} has another plan or grid); choose "
                          "another --output, nothing there is overwritten").format(path=sweep_dir, file=STATE_FILE))
    return True


def write_state(sweep_dir: Path, sweep_file: str | Path, spec: SweepSpec, points: list[Point]) -> None:
    """Record the points and their outcome (atomically: a sweep killed midway leaves a readable file)."""
    runs.write_json_atomic(sweep_dir / STATE_FILE, {"file": str(sweep_file), "spec": spec.to_dict(),
                                                     "points": [p.to_dict() for p in points]})


def launch_for(point: Point, sweep_dir: Path, *, vram_bytes: int | None) -> Any:
    """The ResolvedRun that continues a point: None when its run finished (it is never rerun); a resume from its
    newest checkpoint when it has one; else a new run (over what a run killed before its first checkpoint left),
    resolved again from the point's inputs so that its reasons are in the current language (English for the run
    files, whatever language the points were planned in)."""
    from lora_tui.core.checkpoints import choose_checkpoint
    from lora_tui.core.launcher import check_for_launch, resolve_plan, resolve_run

    run_dir = sweep_dir / point.name
    status = runs.read_status(run_dir)
    if status is not None and status.state == "finished":
        return None
    if (run_dir / runs.RUN_FILE).is_file() and choose_checkpoint(run_dir).checkpoint is not None:
        return resolve_run({"output": str(run_dir)}, resume=True, vram_bytes=vram_bytes)
    started = run_dir.exists() and any(run_dir.iterdir())
    resolved = resolve_plan(point.given, vram_bytes=vram_bytes, inputs=point.resolved.inputs) if point.given \
        else point.resolved
    return check_for_launch(resolved, overwrite=started)


def results(sweep_dir: Path, points: list[Point]) -> Comparison:
    """The points that ran, sorted by best eval loss, then final training loss."""
    rows = [read_run(sweep_dir / p.name) for p in points
            if p.state != "dropped" and (sweep_dir / p.name / runs.STATUS_FILE).is_file()]
    rows.sort(key=sort_key)
    return Comparison(runs=rows, differences=differences([r.settings for r in rows]))


def write_results(sweep_dir: Path, comparison: Comparison, points: list[Point]) -> None:
    """results.json ({results, differences, dropped}) and results.csv (one row per run, the same order)."""
    dropped = [{"name": p.name, "values": p.values, "reason": p.reason} for p in points if p.state == "dropped"]
    runs.write_json_atomic(sweep_dir / RESULTS_JSON, {"results": [r.to_dict() for r in comparison.runs],
                                                       "differences": comparison.differences, "dropped": dropped})
    out = io.StringIO()
    writer = csv.writer(out)
    keys = comparison.differences
    numbers = ("state", "best_eval_loss", "best_step", "final_loss", "best_loss", "steps", "tokens_per_second",
               "wall_seconds", "peak_estimated_bytes", "peak_measured_bytes")
    writer.writerow(["run", *keys, *numbers])
    for r in comparison.runs:
        row = r.to_dict()
        writer.writerow([r.name, *(fmt_value(r.settings.get(k)) if k in r.settings else "" for k in keys),
                         *("" if row[n] is None else row[n] for n in numbers)])
    runs.write_text_atomic(sweep_dir / RESULTS_CSV, out.getvalue())


# ---- a sweep from the TUI --------------------------------------------------------------------------------


def parse_grid(text: str) -> dict[str, list[Any]]:
    """`lora_r=8,16 learning_rate=5e-5,2e-4` -> the grid (each value typed as its setting); UserError naming the key."""
    grid: dict[str, list[Any]] = {}
    for item in text.split():
        key, sep, values = item.partition("=")
        if not sep or key not in TrainingPlan.field_names() or key in _PER_POINT:
            raise UserError(_("grid: {item} must be SETTING=VALUE,VALUE (e.g. lora_r=8,16)").format(item=repr(item)))
        parsed = [TrainingPlan.parse_field(key, v) for v in values.split(",") if v]
        if not parsed:
            raise UserError(_("grid: {key} has no values; give it at least one (e.g. {key}={example})").format(
                key=key, example=_example(key).replace(" ", "")))
        grid[key] = parsed
    if not grid:
        raise UserError(_("grid: give at least one SETTING=VALUE,VALUE (e.g. lora_r=8,16 learning_rate=5e-5,2e-4)"))
    return grid


def sweep_file_text(plan: TrainingPlan, grid: dict[str, list[Any]]) -> str:
    """A sweep file of `plan`'s settings (its output and the grid's keys left out) and `grid`."""
    shared = {k: v for k, v in plan.to_dict().items() if v is not None and k not in grid and k not in _PER_POINT}
    lines = ["# lora-tui sweep file: `lora-tui sweep THIS_FILE` runs it.", "[plan]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in shared.items()]  # JSON's numbers, strings, lists are TOML's
    lines += ["", "[grid]", *(f"{k} = {json.dumps(v)}" for k, v in grid.items())]
    return "\n".join(lines) + "\n"


def start_detached(plan: TrainingPlan, grid: dict[str, list[Any]], root: Path) -> tuple[Path, int]:
    """Write `root/sweep-NAME.toml` for the plan and grid and start `lora-tui sweep` on it in its own session
    (output to `root/sweep-NAME.log`), into the free directory `root/sweep-NAME`; (sweep directory, pid)."""
    import os
    import subprocess

    from lora_tui.core.paths import free_run_dir, run_slug

    spec = SweepSpec(plan={}, grid=grid)
    if spec.size() > MAX_POINTS:
        raise UserError(_("grid: {count} points, more than {limit}; shorten a list").format(count=spec.size(),
                                                                                           limit=MAX_POINTS))
    sweep_dir = free_run_dir(root, f"sweep-{run_slug(Path(plan.output).name)}")
    sweep_file, log = sweep_dir.with_suffix(".toml"), sweep_dir.with_suffix(".log")
    root.mkdir(parents=True, exist_ok=True)
    runs.write_text_atomic(sweep_file, sweep_file_text(plan, grid))
    load_sweep(sweep_file)  # the file as the sweep will read it: a wrong value is one line now, not in the log
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lora_tui", "sweep", str(sweep_file), "--output",
                                 str(sweep_dir)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=os.getcwd())
    return sweep_dir, proc.pid
