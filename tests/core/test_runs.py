"""Run directory: status file, checkpoints, output-directory policy, discovery (typed data files: test_run_files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_tui.core import runs
from lora_tui.errors import UserError


def _checkpoint(run: Path, step: int, *, complete: bool) -> Path:
    ck = run / runs.CHECKPOINTS_DIR / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text("{}")
    (ck / "adapter_model.safetensors").write_bytes(b"x" * 16)
    if complete:
        runs.mark_checkpoint_complete(ck, step)
    return ck


def test_status_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    runs.write_status(tmp_path, runs.RunStatus(state="running", pid=os.getpid(), step=3, max_steps=10))
    data = json.loads((tmp_path / runs.STATUS_FILE).read_text())
    data["world_size"] = 2
    (tmp_path / runs.STATUS_FILE).write_text(json.dumps(data))
    status = runs.read_status(tmp_path)
    assert status is not None and status.step == 3 and status.extra == {"world_size": 2}
    assert status.effective_state() == "running"
    assert runs.update_status(tmp_path, state="finished").state == "finished"
    assert not list(tmp_path.glob(".status.json.*"))  # no temporary files left behind


def test_dead_pid_is_lost(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    runs.write_status(tmp_path, runs.RunStatus(state="running", pid=proc.pid))
    assert runs.read_status(tmp_path).effective_state() == "lost"  # type: ignore[union-attr]
    assert runs.request_stop(tmp_path) is False
    assert not (tmp_path / runs.STOP_FILE).exists()


def test_unreadable_status_is_none(tmp_path: Path) -> None:
    assert runs.read_status(tmp_path) is None
    (tmp_path / runs.STATUS_FILE).write_text('{"state": "runn')
    assert runs.read_status(tmp_path) is None
    (tmp_path / runs.STATUS_FILE).write_text("[" * 100_000)  # nested past the parser's recursion limit
    assert runs.read_status(tmp_path) is None


@pytest.mark.parametrize(("data", "expected"), [
    ({"state": "running", "pid": "123", "step": "5"}, {"state": "running", "pid": None, "step": 0}),
    ({"state": "finished", "extra": None, "step": None, "started_at": "yesterday"},
     {"state": "finished", "extra": {}, "step": 0, "started_at": None}),
    ({"state": 3, "pid": 2**40, "max_steps": "x", "last_checkpoint": 5, "ended_at": float("inf")},
     {"state": "unknown", "pid": 2**40, "max_steps": None, "last_checkpoint": None, "ended_at": None}),
    ({"state": "stopped", "pid": True, "error": ["x"], "next_settings": [], "extra": {"a": 1}, "b": 2},
     {"state": "stopped", "pid": None, "error": None, "next_settings": None, "extra": {"a": 1, "b": 2}}),
    ({"state": "oom", "pid": None, "started_at": 5, "error": None, "next_settings": {"lora_r": 8}},
     {"state": "oom", "pid": None, "started_at": 5, "error": None, "next_settings": {"lora_r": 8}}),
])
def test_status_fields_of_the_wrong_type_keep_their_defaults(tmp_path: Path, data: dict,
                                                             expected: dict) -> None:
    """A status.json from another version or edited by hand never breaks `lora-tui runs` or the monitor."""
    (tmp_path / runs.STATUS_FILE).write_text(json.dumps(data).replace("Infinity", "1e400"))
    status = runs.read_status(tmp_path)
    assert status is not None
    assert {k: getattr(status, k) for k in expected} == expected
    assert status.effective_state() in (*runs.STATES, "lost", "unknown")


def test_latest_complete_checkpoint_skips_partial(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 5, complete=True)
    _checkpoint(tmp_path, 10, complete=True)
    _checkpoint(tmp_path, 15, complete=False)  # killed mid-save: no marker
    assert [runs.checkpoint_step(p) for p in runs.list_checkpoints(tmp_path)] == [5, 10, 15]
    assert runs.latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-10"
    (tmp_path / "checkpoints" / "checkpoint-10" / "adapter_model.safetensors").unlink()
    assert runs.latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-5"


def test_output_dir_policy(tmp_path: Path) -> None:
    assert runs.check_output_dir(tmp_path / "new") == "new"
    (tmp_path / "empty").mkdir()
    assert runs.check_output_dir(tmp_path / "empty") == "new"
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"--output .*used: directory is not empty.*--overwrite"):
        runs.check_output_dir(used)
    assert runs.check_output_dir(used, overwrite=True) == "overwrite"
    with pytest.raises(UserError, match="no complete checkpoint"):
        runs.check_output_dir(used, resume=True)
    _checkpoint(used, 4, complete=True)
    with pytest.raises(UserError, match="or --resume to continue it"):
        runs.check_output_dir(used)
    assert runs.check_output_dir(used, resume=True) == "resume"
    runs.write_status(used, runs.RunStatus(state="running", pid=os.getpid()))
    with pytest.raises(UserError, match="a run is in progress there"):
        runs.check_output_dir(used, overwrite=True)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        runs.check_output_dir(afile)


def test_iter_run_dirs_finds_runs_not_checkpoints(tmp_path: Path) -> None:
    a = tmp_path / "a"
    runs.write_status(a, runs.RunStatus(state="finished"))
    _checkpoint(a, 1, complete=True)
    b = tmp_path / "group" / "b"
    b.mkdir(parents=True)
    (b / "adapter_config.json").write_text("{}")
    (b / "adapter_model.safetensors").write_bytes(b"")
    (tmp_path / "junk").mkdir()
    assert sorted(runs.iter_run_dirs(tmp_path)) == [a, b]


def test_request_stop_signals_live_run(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        runs.write_status(tmp_path, runs.RunStatus(state="running", pid=proc.pid, pgid=proc.pid))
        assert runs.request_stop(tmp_path) is True
        assert (tmp_path / runs.STOP_FILE).exists()
        assert proc.wait(timeout=10) == -15
    finally:
        proc.kill()


def test_request_stop_of_multi_process_run_uses_the_stop_file_only(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        status = runs.RunStatus(state="running", pid=proc.pid, pgid=proc.pid, extra={"world_size": 2})
        runs.write_status(tmp_path, status)
        assert runs.request_stop(tmp_path) is True
        assert (tmp_path / runs.STOP_FILE).exists()
        assert proc.poll() is None  # torchrun is not signalled
    finally:
        proc.kill()


def test_resume_keeps_the_runs_progress_in_status(tmp_path: Path) -> None:
    from lora_tui.core.launcher import ResolvedRun, prepare_run_dir
    from lora_tui.core.plan import TrainingPlan

    run = tmp_path / "run"
    _checkpoint(run, 6, complete=True)
    runs.write_status(run, runs.RunStatus(state="stopped", step=6, max_steps=20,
                                          last_checkpoint="checkpoints/checkpoint-6"))
    prepare_run_dir(ResolvedRun(plan=TrainingPlan(output=str(run)), sources={}, mode="resume"))
    status = runs.read_status(run)
    assert status is not None and status.state == "starting"
    assert (status.step, status.max_steps, status.last_checkpoint) == (6, 20, "checkpoints/checkpoint-6")
    assert status.extra["resumed_from_step"] == 6
