"""Reading the demo model's build progress (no torch): the file, the text, the build under way, the CLI lines."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_tui.core import demo_progress as dp
from lora_tui.core.demo_progress import BuildPrinter, BuildProgress, current_build, read_progress, write_progress


def _build_dir(cache: Path, name: str = ".demo-model.ab12") -> Path:
    path = cache / name
    path.mkdir(parents=True)
    return path


def test_the_reader_parses_what_the_writer_wrote(tmp_path: Path) -> None:
    write_progress(tmp_path, stage="pretraining", step=37, total=100, elapsed=33.3)
    progress = read_progress(tmp_path)
    assert progress is not None
    assert (progress.stage, progress.step, progress.total, progress.elapsed, progress.pid) == (
        "pretraining", 37, 100, 33.3, os.getpid())
    assert sorted(p.name for p in tmp_path.iterdir()) == [dp.PROGRESS_FILE]  # the temporary file is gone


@pytest.mark.parametrize("content", ["", "{", "[]", '{"stage": "pretraining"}', '{"stage": "x", "step": 1, '
                                     '"total": 2, "elapsed": 1, "updated_at": 1}'])
def test_a_damaged_or_foreign_file_reads_as_no_progress(tmp_path: Path, content: str) -> None:
    (tmp_path / dp.PROGRESS_FILE).write_text(content, encoding="utf-8")
    assert read_progress(tmp_path) is None
    assert read_progress(tmp_path / "missing") is None


def test_the_text_says_the_step_and_the_time_left() -> None:
    progress = BuildProgress(stage="pretraining", step=37, total=100, elapsed=37.0, updated_at=1000.0)
    assert progress.describe(now=1000.0) == "building the demo model: step 37/100, about 1m03s left"
    assert progress.describe(now=1013.0) == "building the demo model: step 37/100, about 50s left"
    assert BuildProgress("pretraining", 0, 100, 0.0, 1000.0).describe(1000.0) == "building the demo model: step 0/100"
    assert "tokenizer" in BuildProgress("tokenizer", 0, 100, 0.0, 1000.0).describe()
    assert "saving" in BuildProgress("saving", 100, 100, 90.0, 1000.0).describe()


def test_the_build_under_way_is_found_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path))
    assert current_build() is None
    (tmp_path / "demo-model").mkdir()  # a finished build is not one under way
    (tmp_path / ".demo-model.lock").write_text("", encoding="utf-8")
    assert current_build() is None and dp.build_dirs() == []
    building = _build_dir(tmp_path)
    assert dp.build_dirs() == [building] and current_build() is None  # it has not written its progress yet
    write_progress(building, stage="pretraining", step=5, total=100, elapsed=4.0)
    found = current_build()
    assert found is not None and found.step == 5
    old = _build_dir(tmp_path, ".demo-model.old.123")
    write_progress(old, stage="pretraining", step=99, total=100, elapsed=4.0)
    assert current_build() == found  # an old build being deleted is not shown


def test_a_build_whose_process_died_is_not_shown(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    building = _build_dir(tmp_path)
    write_progress(building, stage="pretraining", step=5, total=100, elapsed=4.0)
    data = json.loads((building / dp.PROGRESS_FILE).read_text(encoding="utf-8"))
    (building / dp.PROGRESS_FILE).write_text(json.dumps({**data, "pid": int(dead.stdout)}), encoding="utf-8")
    assert current_build(tmp_path) is None


def test_the_cli_printer_prints_now_and_then(tmp_path: Path) -> None:
    building = _build_dir(tmp_path)
    out = io.StringIO()
    printer = BuildPrinter(every_steps=10, every_s=3600)
    lines = []
    write_progress(building, stage="tokenizer", total=100)
    lines.append(printer.tick(out, tmp_path))
    for step in range(0, 101):
        write_progress(building, stage="pretraining", step=step, total=100, elapsed=step * 0.9)
        lines.append(printer.tick(out, tmp_path))
    printed = [line for line in lines if line]
    assert printed[0] == "lora-tui: building the demo model: training its tokenizer"
    assert [p.split("step ")[1].split("/")[0] for p in printed[1:]] == [str(s) for s in range(0, 101, 10)]
    assert printed[-1] == "lora-tui: building the demo model: step 100/100"
    assert out.getvalue().splitlines() == printed


def test_the_cli_printer_is_off_for_a_run_without_the_demo_model(tmp_path: Path) -> None:
    from lora_tui.core.plan import TrainingPlan

    building = _build_dir(tmp_path / "cache")
    write_progress(building, stage="pretraining", step=5, total=100, elapsed=4.0)
    for model, printed in (("demo", True), ("some/hub-model", False)):
        run = tmp_path / model.replace("/", "_")
        run.mkdir()
        (run / "run.toml").write_text(TrainingPlan(model=model, output=str(run)).to_toml(), encoding="utf-8")
        assert (BuildPrinter.for_run(run).tick(io.StringIO(), tmp_path / "cache") is not None) is printed
    assert BuildPrinter.for_run(tmp_path / "no-run").enabled is False
