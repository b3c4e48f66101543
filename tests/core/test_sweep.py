"""core.sweep: the grid expanded in order, a sweep directory never reused for another sweep, results sorted; and
(slow) a 2 x 2 sweep on the demo model killed midway and continued, ending with four finished runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_tui.core import runs, sweep
from lora_tui.errors import UserError
from tests.helpers.run_dirs import recorded_run

SPEC = ('[plan]\nmodel = "demo"\nmax_steps = 3\neval_split = 0.1\n'
        "[grid]\nlora_r = [4, 8]\nlearning_rate = [5e-5, 2e-3]\n")


def _spec(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_expand_first_key_slowest_and_names_say_the_values(tmp_path: Path) -> None:
    points = sweep.expand(sweep.load_sweep(_spec(tmp_path)))
    assert [p.values for p in points] == [{"lora_r": 4, "learning_rate": 5e-5}, {"lora_r": 4, "learning_rate": 2e-3},
                                          {"lora_r": 8, "learning_rate": 5e-5}, {"lora_r": 8, "learning_rate": 2e-3}]
    assert [p.name for p in points] == ["01-lora_r4-learning_rate5e-5", "02-lora_r4-learning_rate0.002",
                                        "03-lora_r8-learning_rate5e-5", "04-lora_r8-learning_rate0.002"]


def test_a_target_pattern_name_in_the_grid_is_the_resolvers_pattern(tmp_path: Path) -> None:
    spec = sweep.load_sweep(_spec(tmp_path, '[grid]\ntarget_modules = ["minimal", "q_proj,v_proj"]\n'))
    first, second = (sweep.given_for(spec, p, tmp_path) for p in sweep.expand(spec))
    assert first["target_pattern"] == "minimal" and "target_modules" not in first
    assert second["target_modules"] == ["q_proj", "v_proj"]


def test_a_sweep_directory_holds_one_sweep(tmp_path: Path) -> None:
    spec = sweep.load_sweep(_spec(tmp_path))
    out = tmp_path / "out"
    assert sweep.check_sweep_dir(out, spec) is False
    out.mkdir()
    sweep.write_state(out, "grid.toml", spec, sweep.expand(spec))
    assert sweep.check_sweep_dir(out, spec) is True  # the same sweep again: it continues
    other = sweep.load_sweep(_spec(tmp_path, SPEC.replace("[4, 8]", "[4, 16]")))
    with pytest.raises(UserError, match="holds a different sweep"):
        sweep.check_sweep_dir(out, other)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and not a sweep directory"):
        sweep.check_sweep_dir(tmp_path / "busy", spec)


def test_results_sorted_by_best_eval_then_final_loss_in_csv_and_json(tmp_path: Path) -> None:
    points = [sweep.Point(name=n, values={"lora_r": r}) for n, r in (("a", 4), ("b", 8), ("c", 16), ("d", 32))]
    recorded_run(tmp_path / "a", [2.0, 1.9], evals={2: 1.8})
    recorded_run(tmp_path / "b", [2.0, 1.5], evals={2: 1.6})
    recorded_run(tmp_path / "c", [2.0, 1.4], evals={2: 1.6})
    points[3].state, points[3].reason = "dropped", "cannot fit"
    result = sweep.results(tmp_path, points)
    sweep.write_results(tmp_path, result, points)
    assert [r.name for r in result.runs] == ["c", "b", "a"]
    saved = json.loads((tmp_path / sweep.RESULTS_JSON).read_text())
    assert [Path(r["run"]).name for r in saved["results"]] == ["c", "b", "a"]
    assert saved["dropped"] == [{"name": "d", "values": {"lora_r": 32}, "reason": "cannot fit"}]
    rows = list(csv.reader((tmp_path / sweep.RESULTS_CSV).open()))
    assert rows[0][:4] == ["run", "state", "best_eval_loss", "best_step"]
    assert [(r[0], r[2], r[4]) for r in rows[1:]] == [("c", "1.6", "1.4"), ("b", "1.6", "1.5"), ("a", "1.8", "1.9")]


@pytest.fixture(scope="module")
def demo_model() -> Path:
    """The built demo model (tests/train's fixture, which this directory does not see)."""
    from lora_tui.train.demo import ensure_demo_model

    return ensure_demo_model()


def _wait_for_checkpoint(run_dir: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        status = runs.read_status(run_dir)
        if status is not None and status.state == "running" and runs.latest_complete_checkpoint(run_dir):
            return
        time.sleep(0.05)
    raise AssertionError(f"{run_dir.name} never had a checkpoint while running")


@pytest.mark.slow
@pytest.mark.timeout(900)  # the demo model's build and four points of 3 steps, on a busy machine
def test_sweep_killed_midway_continues_to_four_finished_runs(tmp_path: Path, demo_model: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from lora_tui.cli import main

    spec, out = _spec(tmp_path), tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "lora_tui", "sweep", str(spec), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    second = out / "02-lora_r4-learning_rate0.002"
    try:
        _wait_for_checkpoint(second, proc, 600)
    finally:
        proc.kill()  # the sweep dies at once ...
        proc.wait()
    status = runs.read_status(second)
    assert status is not None and status.pgid is not None
    os.killpg(status.pgid, signal.SIGKILL)  # ... and so does the point it was running, half-way
    first = out / "01-lora_r4-learning_rate5e-5"
    assert runs.read_status(first).state == "finished"  # type: ignore[union-attr]
    first_info = (first / runs.INFO_FILE).stat().st_mtime_ns
    deadline = time.time() + 30
    while runs.read_status(second).effective_state() != "lost" and time.time() < deadline:  # type: ignore[union-attr]
        time.sleep(0.1)

    assert main(["sweep", str(spec), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "finished earlier: kept, not rerun" in printed and "resuming from checkpoint-" in printed
    assert (first / runs.INFO_FILE).stat().st_mtime_ns == first_info  # the finished point was not rerun
    from lora_tui.core.run_files import read_training_info

    resumed = read_training_info(second)
    assert resumed is not None and resumed.resumed_from is not None and resumed.resumed_from.startswith("checkpoints/")
    names = [p.name for p in sweep.expand(sweep.load_sweep(spec))]
    assert [runs.read_status(out / n).state for n in names] == ["finished"] * 4  # type: ignore[union-attr]
    state = json.loads((out / sweep.STATE_FILE).read_text())
    assert [p["state"] for p in state["points"]] == ["finished"] * 4
    results = json.loads((out / sweep.RESULTS_JSON).read_text())["results"]
    keys = [(r["best_eval_loss"], r["final_loss"]) for r in results]
    assert len(results) == 4 and keys == sorted(keys)  # best eval loss first, then final loss
    order = [Path(r["run"]).name for r in results]
    assert [row[0] for row in list(csv.reader((out / sweep.RESULTS_CSV).open()))[1:]] == order
    table = printed[printed.index("results, best eval loss first:"):].splitlines()
    assert [line.split()[0] for line in table[2:6]] == order
