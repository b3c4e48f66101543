"""`lora-tui runs` against run directories written by the fake trainer (no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_tui.cli import main
from lora_tui.core import run_files, runs
from tests.helpers import FAKE_TRAINER

FAKE = FAKE_TRAINER


def _fake(run_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(FAKE), str(run_dir), *args], stdout=subprocess.DEVNULL,
                            start_new_session=True)


def test_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _fake(tmp_path / "a", "--steps", "4", "--interval", "0", "--save-every", "2").wait() == 0
    assert _fake(tmp_path / "b", "--steps", "4", "--interval", "0", "--oom-at", "3").wait() == 1
    assert main(["runs", "list", str(tmp_path), "--json"]) == 0
    rows = {Path(r["run"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert rows["a"]["state"] == "finished" and rows["a"]["step"] == 4
    assert rows["b"]["state"] == "oom" and rows["b"]["step"] == 2
    assert main(["runs", "list", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "finished" in text and "oom" in text
    assert main(["runs", "show", str(tmp_path / "a")]) == 0
    shown_text = capsys.readouterr().out
    assert "checkpoints/checkpoint-4" in shown_text
    last = run_files.read_metrics(tmp_path / "a")[0][-1].loss
    started = runs.read_status(tmp_path / "a").started_at  # type: ignore[union-attr]
    assert f"last loss        {last:.4f}\n" in shown_text  # printed for reading; JSON keeps the number
    assert f"started at       {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}\n" in shown_text
    assert rows["a"]["last_loss"] == last and rows["b"]["last_loss"] is not None
    assert main(["runs", "show", str(tmp_path / "a"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["training_info"]["final_loss"] == last and shown["training_info"]["steps"] == 4
    assert shown["training_info"]["fake"] is True  # a key the reader does not know is passed through


def test_stop_a_live_run_then_refuse_a_finished_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "live"
    proc = _fake(run_dir, "--steps", "1000", "--interval", "0.02")
    try:
        deadline = time.time() + 30
        while (runs.read_status(run_dir) is None or runs.read_status(run_dir).state != "running") \
                and time.time() < deadline:
            time.sleep(0.05)
        assert main(["runs", "stop", str(run_dir)]) == 0
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    status = runs.read_status(run_dir)
    assert status is not None and status.state == "stopped" and 0 < status.step < 1000
    assert runs.latest_complete_checkpoint(run_dir) is not None
    capsys.readouterr()
    assert main(["runs", "stop", str(run_dir)]) == 2
    assert "not running (state stopped)" in capsys.readouterr().err


def test_logs_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    with open(run_dir / runs.LOG_FILE, "wb") as log:
        subprocess.run([sys.executable, str(FAKE), str(run_dir), "--steps", "3", "--interval", "0"], stdout=log,
                       check=True)
    assert main(["runs", "logs", str(run_dir), "-f"]) == 0
    assert "fake trainer: finished at step 3" in capsys.readouterr().out
    assert main(["runs", "show", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_logs_follow_a_live_run_to_its_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "live"
    run_dir.mkdir()
    with open(run_dir / runs.LOG_FILE, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(FAKE), str(run_dir), "--steps", "30", "--interval", "0.02"],
                                stdout=log, start_new_session=True)
    try:
        deadline = time.time() + 30
        while (runs.read_status(run_dir) is None or runs.read_status(run_dir).step < 2) and time.time() < deadline:
            time.sleep(0.02)
        assert main(["runs", "logs", str(run_dir), "-f"]) == 0  # returns once the run is no longer live
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = capsys.readouterr().out.splitlines()
    steps = [line.split()[1] for line in lines if line.startswith("step ")]
    assert steps == [f"{i}/30" for i in range(1, 31)]  # every line once, in order, none skipped
    assert lines[-1] == "fake trainer: finished at step 30"


@pytest.mark.parametrize("info_text", ['{"final_loss": 1.', "[1, 2]", "\xff"])
def test_show_a_run_with_a_damaged_training_info(info_text: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "r"
    assert _fake(run_dir, "--steps", "2", "--interval", "0").wait() == 0
    (run_dir / runs.INFO_FILE).write_bytes(info_text.encode("latin-1"))
    assert main(["runs", "show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "state            finished" in out
    assert f"{runs.INFO_FILE} is unreadable or damaged" in out
    assert main(["runs", "show", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training_info"] is None


@pytest.mark.parametrize("text", ["garbage", "[]", ""])
def test_show_and_stop_a_run_whose_status_is_damaged_exit_2(text: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "r"
    assert _fake(run_dir, "--steps", "2", "--interval", "0").wait() == 0
    (run_dir / runs.STATUS_FILE).write_text(text)
    for action in ("show", "stop"):
        assert main(["runs", action, str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert f"{run_dir / runs.STATUS_FILE}: unreadable or damaged" in err and len(err.splitlines()) == 1
    (run_dir / runs.STATUS_FILE).unlink()
    (run_dir / runs.RUN_FILE).write_text("[plan]\n")
    assert main(["runs", "show", str(run_dir)]) == 2
    assert "no status.json" in capsys.readouterr().err


def test_logs_of_a_run_without_a_log_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "r"
    assert _fake(run_dir, "--steps", "2", "--interval", "0").wait() == 0  # its output went nowhere
    for flags in ([], ["-f"]):
        assert main(["runs", "logs", str(run_dir), *flags]) == 2
        assert f"{run_dir}: no run.log" in capsys.readouterr().err


def test_stop_never_signals_a_process_that_reused_a_dead_runs_pid(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal

    run_dir = tmp_path / "r"
    proc = _fake(run_dir, "--steps", "1000", "--interval", "0.02")
    deadline = time.time() + 30
    while (runs.read_status(run_dir) is None or runs.read_status(run_dir).state != "running") \
            and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        runs.update_status(run_dir, pid=sleeper.pid, pgid=sleeper.pid)  # the pid now names another process
        assert main(["runs", "stop", str(run_dir)]) == 2
        assert "not running (state lost)" in capsys.readouterr().err
        assert main(["runs", "list", str(tmp_path)]) == 0
        assert capsys.readouterr().out.splitlines()[2].startswith("lost")
        time.sleep(0.2)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_diagnose_names_the_symptom_and_is_silent_on_a_healthy_run(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import math

    from tests.helpers.run_dirs import recorded_run

    flat = recorded_run(tmp_path / "flat", [2.3 + 0.001 * (i % 2) for i in range(40)], max_steps=100)
    assert main(["runs", "diagnose", str(flat)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Loss is not falling: ") and "[guide, troubleshooting" in out
    assert main(["runs", "diagnose", str(flat), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["key"] for s in doc["symptoms"]] == ["loss_not_falling"]
    assert set(doc["symptoms"][0]["remedies"][0]) == {"description", "changes", "source"}
    healthy = recorded_run(tmp_path / "ok", [1.5 + 0.7 * math.exp(-i / 10) for i in range(60)], max_steps=60)
    assert main(["runs", "diagnose", str(healthy)]) == 0
    assert capsys.readouterr().out == ""
    nan = recorded_run(tmp_path / "nan", [2.0, 1.9, math.nan], max_steps=10)
    assert main(["runs", "diagnose", str(nan), "--json"]) == 0
    assert [s["key"] for s in json.loads(capsys.readouterr().out)["symptoms"]] == ["non_finite"]


def test_diagnose_on_a_directory_that_is_no_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "diagnose", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_list_and_show_give_the_best_eval_loss_and_its_step(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.run_dirs import recorded_run

    recorded_run(tmp_path / "evaluated", [2.0, 1.8, 1.6, 1.5, 1.4, 1.3], evals={2: 1.9, 4: 1.7, 6: 1.75})
    recorded_run(tmp_path / "no-eval", [2.0, 1.9])
    assert main(["runs", "list", str(tmp_path), "--json"]) == 0
    rows = {Path(r["run"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["evaluated"]["best_eval_loss"], rows["evaluated"]["best_eval_step"]) == (1.7, 4)
    assert rows["evaluated"]["last_loss"] == 1.3
    assert (rows["no-eval"]["best_eval_loss"], rows["no-eval"]["best_eval_step"]) == (None, None)
    assert main(["runs", "list", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "best eval @ step" in lines[1]
    evaluated = next(line for line in lines if line.endswith("  evaluated"))
    assert "1.7000 @ 4" in evaluated and "1.3000" in evaluated
    assert max(len(line) for line in lines[1:]) <= 80
    assert main(["runs", "show", str(tmp_path / "evaluated")]) == 0
    assert "best eval loss 1.7000 at step 4" in capsys.readouterr().out


def test_the_summary_keeps_one_history_across_a_resume(tmp_path: Path) -> None:
    """A resume from checkpoint-2 discards the first attempt's steps 3-4 (their eval 1.0 and loss 0.5 included)."""
    from lora_tui.core.run_summary import summarize
    from tests.helpers.run_dirs import recorded_run

    run = recorded_run(tmp_path / "resumed", [2.0, 1.8, 1.0, 0.5], evals={2: 1.9, 4: 1.0}, state="running")
    run_files.mark_superseded(run, 2, "checkpoint-2")
    summary = summarize(run)
    assert (summary.best_eval_loss, summary.best_eval_step, summary.last_loss) == (1.9, 2, 1.8)
    with run_files.open_metrics(run) as fh:
        run_files.append_metrics(fh, run_files.MetricsRecord(step=3, loss=1.6, eval_loss=1.5))
        fh.write('{"step": 4, "loss": 1.')  # a line still being written is not read
    summary = summarize(run)
    assert (summary.best_eval_loss, summary.best_eval_step, summary.last_loss) == (1.5, 3, 1.6)
    full, _ = run_files.read_metrics(run)  # the full reader agrees
    assert run_files.best_eval(full) == (3, 1.5) and full[-1].loss == 1.6


def test_compare_finished_stopped_and_lost_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lora_tui.core.plan import TrainingPlan
    from tests.helpers.run_dirs import recorded_run

    done = recorded_run(tmp_path / "done", [2.0, 1.5, 1.6], evals={2: 1.55})
    stopped = recorded_run(tmp_path / "stopped", [2.2, 2.0], state="stopped")
    (stopped / runs.RUN_FILE).write_text(TrainingPlan(output=str(stopped), lora_r=8, lora_alpha=16,
                                                      learning_rate=2e-4).to_toml(), encoding="utf-8")
    lost = recorded_run(tmp_path / "lost", [2.4, 2.3, 2.1], state="running", pid=2**22 + 4321)
    assert main(["runs", "compare", str(done), str(stopped), str(lost), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["differences"] == ["lora_r", "lora_alpha", "learning_rate"]
    got = [(Path(r["run"]).name, r["state"], r["final_loss"], r["best_eval_loss"], r["best_step"], r["steps"],
            r["wall_seconds"]) for r in out["runs"]]
    assert got == [("done", "finished", 1.6, 1.55, 2, 3, 100.0), ("stopped", "stopped", 2.0, None, None, 2, 100.0),
                   ("lost", "lost", 2.1, None, None, 3, 100.0)]
    assert out["runs"][1]["settings"]["lora_r"] == 8 and set(out["runs"][0]) >= {
        "run", "settings", "final_loss", "best_eval_loss", "best_step", "steps", "tokens_per_second", "wall_seconds"}
    assert main(["runs", "compare", str(done), str(stopped)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split()[:5] == ["run", "state", "lora_r", "lora_alpha", "learning_rate"]
    assert text[1].split()[:8] == ["done", "finished", "16", "32", "5e-5", "1.6000", "1.5000", "1.5500"]
    assert text[-1] == "settings that differ: lora_r, lora_alpha, learning_rate"


def test_compare_refuses_one_run_and_a_directory_that_is_no_run(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.run_dirs import recorded_run

    done = recorded_run(tmp_path / "done", [2.0])
    assert main(["runs", "compare", str(done)]) == 2
    assert capsys.readouterr().err.strip() == "lora-tui: error: compare needs at least two different run directories"
    assert main(["runs", "compare", str(done), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lora-tui: error: {tmp_path}: not a run directory (no status.json or run.toml)"
