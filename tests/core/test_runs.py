"""Run directory: status file, checkpoints, output-directory policy, discovery (typed data files: test_run_files)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_tui.core import run_lock, runs
from lora_tui.errors import UserError
from tests.helpers import FAKE_TRAINER
from tests.helpers.fake_trainer import write_safetensors

FAKE = FAKE_TRAINER


def _checkpoint(run: Path, step: int, *, complete: bool) -> Path:
    ck = run / runs.CHECKPOINTS_DIR / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 20}))
    write_safetensors(ck / "adapter_model.safetensors", {"lora_A": [2, 4]})
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


def _finished_run(path: Path) -> Path:
    """A directory as a finished lora-tui run leaves it (run.toml, status.json, metrics, an adapter)."""
    runs.write_status(path, runs.RunStatus(state="finished", step=3, max_steps=3))
    (path / runs.RUN_FILE).write_text("[plan]\nmax_steps = 3\n")
    (path / runs.METRICS_FILE).write_text('{"step": 1, "loss": 2.0}\n')
    for name in (*runs.ADAPTER_FILES, "tokenizer.json", "README.md"):
        (path / name).write_text("{}")
    return path


def test_output_dir_policy(tmp_path: Path) -> None:
    assert runs.check_output_dir(tmp_path / "new") == "new"
    (tmp_path / "empty").mkdir()
    assert runs.check_output_dir(tmp_path / "empty") == "new"
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"--output .*used: directory is not empty.*--overwrite"):
        runs.check_output_dir(used)
    with pytest.raises(UserError, match="--overwrite refused: it is not a lora-tui run directory"):
        runs.check_output_dir(used, overwrite=True)
    with pytest.raises(UserError, match="no complete checkpoint"):
        runs.check_output_dir(used, resume=True)
    _checkpoint(used, 4, complete=True)
    with pytest.raises(UserError, match="or --resume to continue it"):
        runs.check_output_dir(used)
    assert runs.check_output_dir(used, resume=True) == "resume"
    run = _finished_run(tmp_path / "run")
    assert runs.check_output_dir(run, overwrite=True) == "overwrite"
    runs.write_status(run, runs.RunStatus(state="running", pid=os.getpid()))
    with pytest.raises(UserError, match="a run is in progress there"):
        runs.check_output_dir(run, overwrite=True)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        runs.check_output_dir(afile)


@pytest.mark.parametrize(("case", "reason"), [
    ("cwd", "it is the current directory"),
    ("ancestor", "it contains the current directory"),
    ("data", "it contains the training data"),
    ("model", "it contains the base model"),
    ("nested", "it contains another run (old)"),
    ("foreign", "it holds files lora-tui did not write (thesis.txt)"),
    ("project", "it is not a lora-tui run directory"),
])
def test_overwrite_replaces_only_lora_tuis_own_run(case: str, reason: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = _finished_run(tmp_path / "proj")
    protect: list[tuple[str, str | Path]] = []
    if case == "cwd":
        monkeypatch.chdir(run)
    elif case == "ancestor":
        (run / runs.CHECKPOINTS_DIR / "deep").mkdir(parents=True)
        monkeypatch.chdir(run / runs.CHECKPOINTS_DIR / "deep")
    elif case == "data":
        (run / "data.jsonl").write_text("{}\n")
        protect = [("the training data", run / "data.jsonl")]
    elif case == "model":
        (run / "base").mkdir()
        protect = [("the base model", run / "base")]
    elif case == "nested":
        _finished_run(run / "old")
    elif case == "foreign":
        (run / "thesis.txt").write_text("x")
    else:
        (run / runs.STATUS_FILE).unlink()
        (run / "src").mkdir()
    before = sorted(p.name for p in run.rglob("*"))
    with pytest.raises(UserError, match=f"--output .*proj: --overwrite refused: {re.escape(reason)}"):
        runs.check_output_dir(run, overwrite=True, protect=protect)
    assert sorted(p.name for p in run.rglob("*")) == before


def test_an_output_that_is_a_symlink_loop_or_a_dangling_link_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(UserError, match="--output .*loop: a symbolic link loop"):
        runs.check_output_dir(loop)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="a symbolic link to .*nowhere, which does not exist"):
        runs.check_output_dir(dangling)


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


# ---- one writer: the run lock, pids and their start times -------------------------------------------


def _wait_for(cond, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def _sleeper() -> subprocess.Popen[bytes]:
    """An unrelated process (its own session) that must survive whatever lora-tui does."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_the_lock_is_exclusive_across_processes_and_released_by_the_os(tmp_path: Path) -> None:
    code = ("import sys, time; from lora_tui.core import run_lock; "
            "assert run_lock.acquire(sys.argv[1]) is not None; print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert run_lock.probe(tmp_path) is True
        assert run_lock.acquire(tmp_path, wait_s=0.05) is None
    finally:
        holder.kill()
        holder.wait()
    assert run_lock.probe(tmp_path) is False  # kill -9 released it
    lock = run_lock.acquire(tmp_path)
    assert lock is not None and run_lock.probe(tmp_path) is True
    lock.release()
    assert run_lock.probe(tmp_path / "no-such-run") is None


def test_a_run_whose_lock_is_free_is_lost_and_an_unrelated_pid_is_never_signalled(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fake = subprocess.Popen([sys.executable, str(FAKE), str(run), "--steps", "1000", "--interval", "0.02"],
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: (s := runs.read_status(run)) is not None and s.state == "running")
        assert runs.read_status(run).effective_state() == "running"  # type: ignore[union-attr]
    finally:
        os.killpg(fake.pid, signal.SIGKILL)
        fake.wait()
    sleeper = _sleeper()
    try:  # the dead run's pid now names another process
        runs.update_status(run, pid=sleeper.pid, pgid=sleeper.pid)
        status = runs.read_status(run)
        assert status is not None and status.state == "running" and status.effective_state() == "lost"
        assert runs.request_stop(run) is False
        time.sleep(0.2)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_without_a_lock_file_the_pid_and_its_start_time_decide(tmp_path: Path) -> None:
    sleeper = _sleeper()
    try:
        started = run_lock.process_start_time(sleeper.pid)
        assert started is not None
        runs.write_status(tmp_path, runs.RunStatus(state="running", pid=sleeper.pid, pgid=sleeper.pid,
                                                   pid_started=started - 3600))  # recorded an hour ago
        assert runs.read_status(tmp_path).effective_state() == "lost"  # type: ignore[union-attr]
        assert runs.request_stop(tmp_path) is False
        runs.update_status(tmp_path, pid_started=started)  # the recorded process itself
        assert runs.read_status(tmp_path).effective_state() == "running"  # type: ignore[union-attr]
        assert runs.request_stop(tmp_path) is True
        assert sleeper.wait(timeout=10) == -signal.SIGTERM
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_run_that_ends_between_reading_its_status_and_probing_its_lock_is_not_lost(tmp_path: Path) -> None:
    from lora_tui.core import run_lock

    run = tmp_path / "run"
    run.mkdir()
    (run / run_lock.LOCK_FILE).touch()  # a lock file nobody holds: the worker has exited
    runs.write_status(run, runs.RunStatus(state="running", pid=None))
    seen = runs.read_status(run)
    assert seen is not None and seen.effective_state() == "lost"  # running, lock free: it died
    runs.write_status(run, runs.RunStatus(state="finished", pid=None))  # ...unless it wrote its end meanwhile
    assert seen.state == "running" and seen.effective_state() == "finished"
