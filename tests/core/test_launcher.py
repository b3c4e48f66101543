"""Writing and starting a run directory: one owner (the lock, raced), the trash of --overwrite, a full disk.

The training process is the fake trainer (tests/helpers/fake_trainer.py), started by the real `launcher.launch`
through a patched `launcher.worker_command`, so each launch is a real process owning a real directory.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lora_tui.core import launcher, output_dir, run_lock, runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.errors import UserError
from tests.helpers import FAKE_TRAINER

FAKE = FAKE_TRAINER


def _wait(cond: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def finished_run(path: Path) -> Path:
    """A run directory as the fake trainer leaves it, finished."""
    subprocess.run([sys.executable, str(FAKE), str(path), "--steps", "2", "--interval", "0", "--save-every", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    (path / runs.RUN_FILE).write_text("[plan]\nmax_steps = 2\n")
    return path


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """`launcher.launch` starts the fake trainer (extra flags appended to the list); killed afterwards."""
    flags: list[str] = ["--steps", "100000", "--interval", "0.05"]
    started: list[int] = []

    def command(run_dir: Path, *, resume: bool = False, **_: object) -> list[str]:
        return [sys.executable, str(FAKE), str(run_dir), *flags, *(["--resume"] if resume else [])]

    real_start = launcher.start_worker

    def start(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        proc = real_start(*args, **kwargs)  # type: ignore[arg-type]
        started.append(proc.pid)
        return proc

    monkeypatch.setattr(launcher, "worker_command", command)
    monkeypatch.setattr(launcher, "start_worker", start)
    yield flags
    for pid in started:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _run(output: Path, mode: str = "new") -> launcher.ResolvedRun:
    return launcher.ResolvedRun(plan=TrainingPlan(output=str(output)), sources={}, mode=mode)


def test_overwrite_moves_the_old_run_to_the_trash_until_the_new_one_has_started(tmp_path: Path,
                                                                               fake_worker: list[str]) -> None:
    old = finished_run(tmp_path / "run")
    (old / runs.INFO_FILE).write_text('{"final_loss": 1.5, "old": true}')
    run_dir, proc = launcher.launch(_run(old, "overwrite"))
    _wait(lambda: (runs.read_status(run_dir) or runs.RunStatus()).state == "running")
    _wait(lambda: not (run_dir / output_dir.TRASH_DIR).exists())  # emptied once the new run started
    assert runs.read_status(run_dir).pid == proc.pid  # type: ignore[union-attr]
    assert not (run_dir / runs.INFO_FILE).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden copies beside it


def test_a_second_launch_on_a_running_directory_is_refused(tmp_path: Path, fake_worker: list[str]) -> None:
    run_dir, proc = launcher.launch(_run(tmp_path / "run"))
    for mode in ("overwrite", "resume", "new"):
        with pytest.raises(UserError, match="another lora-tui process is starting or running a run there"):
            launcher.launch(_run(run_dir, mode))
    with pytest.raises(UserError, match="a run is in progress there"):
        runs.check_output_dir(run_dir, overwrite=True)
    assert runs.read_status(run_dir).pid == proc.pid  # type: ignore[union-attr]


RACE = r"""
import sys, time
from lora_tui.core import launcher, runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.errors import UserError
fake, base, *outputs = sys.argv[1:]
launcher.worker_command = lambda run_dir, **kw: [sys.executable, fake, str(run_dir), "--steps", "100000",
                                                 "--interval", "0.05"]
for i, out in enumerate(outputs):
    mode = "overwrite" if out.endswith("-old") else "new"
    try:
        runs.check_output_dir(out, overwrite=mode == "overwrite")  # what `lora-tui train` checks first
        time.sleep(max(0.0, float(base) + 0.7 * i - time.time()))  # both launch at the same moment
        run_dir, proc = launcher.launch(launcher.ResolvedRun(plan=TrainingPlan(output=out), sources={}, mode=mode))
        print(i, "STARTED", proc.pid, flush=True)
    except UserError as exc:
        print(i, "REFUSED", str(exc).replace(chr(10), " "), flush=True)
"""


def test_two_concurrent_launches_on_one_directory_exactly_one_proceeds(tmp_path: Path) -> None:
    """20 races of two launcher processes (new and --overwrite): one starts, the other is refused."""
    outputs = []
    for i in range(20):
        out = tmp_path / (f"r{i}-old" if i % 2 else f"r{i}")
        if i % 2:
            finished_run(out)
        outputs.append(str(out))
    base = time.time() + 2
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(FAKE), str(base), *outputs], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    lines = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        lines += out.splitlines()
    started = [line.split() for line in lines if " STARTED " in line]
    try:
        by_iteration = {i: [line for line in lines if line.split()[0] == str(i)] for i in range(20)}
        for results in by_iteration.values():
            assert len(results) == 2, results
            assert sum(" STARTED " in r for r in results) == 1, results
            assert "REFUSED" in next(r for r in results if " STARTED " not in r)
        for i, out in enumerate(outputs):
            status = runs.read_status(out)
            winner = next(int(words[2]) for words in started if words[0] == str(i))
            assert status is not None and status.pid in (winner, None)
            _wait(lambda out=out: (runs.read_status(out) or runs.RunStatus()).state == "running")
            _wait(lambda out=out: not (Path(out) / output_dir.TRASH_DIR).exists())
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden copies
    finally:
        for words in started:
            try:
                os.killpg(int(words[2]), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _no_space(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_start_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   fake_worker: list[str]) -> None:
    new = tmp_path / "new"
    old = finished_run(tmp_path / "old")
    before = {p.relative_to(old): p.read_bytes() for p in old.rglob("*") if p.is_file()}
    resumable = finished_run(tmp_path / "resumable")
    runs.update_status(resumable, state="stopped")
    status_before = (resumable / runs.STATUS_FILE).read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)  # every atomic write fails as on a full disk
    for target, mode in ((new, "new"), (old, "overwrite"), (resumable, "resume")):
        with pytest.raises(UserError, match=r"cannot write the run directory \(No space left on device\); "
                                            "nothing was changed"):
            launcher.launch(_run(target, mode))
    monkeypatch.undo()
    assert not new.exists()
    assert {p.relative_to(old): p.read_bytes() for p in old.rglob("*") if p.is_file()} == before
    assert (resumable / runs.STATUS_FILE).read_bytes() == status_before
    for target in (old, resumable):
        assert not (target / output_dir.TRASH_DIR).exists() and run_lock.probe(target) is False
        assert not [p for p in target.iterdir() if p.name.startswith(f".{runs.STATUS_FILE}.")]


def test_a_launch_that_cannot_start_its_process_fails_its_status_and_releases_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "worker_command", lambda *a, **k: [str(tmp_path / "no-such-python")])
    with pytest.raises(UserError, match="cannot start the training process"):
        launcher.launch(_run(tmp_path / "run"))
    status = runs.read_status(tmp_path / "run")
    assert status is not None and status.state == "failed"
    assert run_lock.probe(tmp_path / "run") is False


def test_resume_from_the_fake_supersedes_the_discarded_steps(tmp_path: Path, fake_worker: list[str]) -> None:
    from lora_tui.core import run_files

    run = tmp_path / "run"
    subprocess.run([sys.executable, str(FAKE), str(run), "--steps", "10", "--interval", "0", "--save-every", "4",
                    "--fail-at", "10"], stdout=subprocess.DEVNULL)
    (run / runs.RUN_FILE).write_text("[plan]\n")
    assert [r.step for r in run_files.read_metrics(run)[0]] == list(range(1, 10))
    fake_worker[:] = ["--steps", "10", "--interval", "0"]
    run_dir, proc = launcher.launch(_run(run, "resume"))
    assert proc.wait(timeout=30) == 0
    assert [r.step for r in run_files.read_metrics(run)[0]] == list(range(1, 11))  # 9 of the failed attempt gone
    raw = [json.loads(line) for line in (run / runs.METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in raw].count(9) == 2  # kept on disk, marked superseded
    assert "lora-tui: resumed from checkpoint-8" in (run / runs.LOG_FILE).read_text()


def test_overwrite_protects_the_data_a_glob_reads_and_a_local_base_model(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    plan = TrainingPlan(data=str(tmp_path / "proj" / "shards" / "*.parquet"), model=str(base))
    assert launcher.protected_paths(plan) == [("the training data", str(tmp_path / "proj" / "shards")),
                                              ("the base model", str(base))]
    assert launcher.protected_paths(TrainingPlan()) == []


def test_each_node_gets_torchrun_rendezvous_and_its_own_command() -> None:
    from lora_tui.core import distributed
    from lora_tui.core.plan import TrainingPlan

    plan = TrainingPlan(nnodes=2, node_rank=1, num_processes=4, master_addr="10.0.0.1", master_port=29511)
    command = launcher.worker_command(Path("/r"), resume=True, plan=plan)
    assert command[1:3] == ["-m", "torch.distributed.run"]
    assert command[3:8] == ["--nnodes=2", "--node_rank=1", "--nproc_per_node=4", "--master_addr=10.0.0.1",
                            "--master_port=29511"]
    assert command[-3:] == ["lora_tui.train", "/r", "--resume"]
    assert launcher.worker_command(Path("/r"), num_processes=2)[3:5] == ["--standalone", "--nproc_per_node=2"]
    assert launcher.worker_command(Path("/r"))[1:] == ["-m", "lora_tui.train", "/r"]
    commands = distributed.node_commands(plan, plan.command_line())
    assert len(commands) == 2 and "--node-rank" not in commands[0]
    assert commands[1].endswith("--node-rank 1") and commands[1].count("--node-rank") == 1


def test_version_or_plan_mismatch_is_one_message_naming_the_rank() -> None:
    from lora_tui.core import distributed

    same = {"versions": {"torch": "2.5.0", "trl": "0.12"}, "plan": {"lora_r": 8}}
    reports = [{"rank": 0, "node": 0, **same}, {"rank": 1, "node": 1, **same}]
    assert distributed.mismatch(reports) is None
    reports[1] = {**reports[1], "versions": {"torch": "2.4.1", "trl": "0.12"}}
    assert distributed.mismatch(reports) == ("rank 1 (node 1) runs torch 2.4.1, rank 0 runs 2.5.0: install the "
                                             "same versions on every machine")
    reports[1] = {"rank": 1, "node": 1, "versions": same["versions"], "plan": {"lora_r": 4}}
    assert "rank 1 (node 1) has a different plan: lora_r = 4 (rank 0: 8)" in str(distributed.mismatch(reports))


@pytest.mark.parametrize(("settings", "message"), [
    ({"nnodes": 2}, "`master_addr` (--master-addr) is needed with --nnodes 2"),
    ({"nnodes": 2, "master_addr": "h", "node_rank": 2}, "`node_rank` (--node-rank) must be a whole number from 0"),
    ({"distributed": "fsdp"}, "`distributed` (--distributed) fsdp shards the weights across processes"),
    ({"master_port": 70000}, "`master_port` (--master-port) must be a positive integer"),
])
def test_distributed_settings_that_do_not_go_together_are_refused(settings: dict[str, object],
                                                                  message: str) -> None:
    from lora_tui.core.plan import TrainingPlan
    from lora_tui.errors import UserError

    with pytest.raises(UserError, match=re.escape(message)):
        TrainingPlan(**settings)  # type: ignore[arg-type]


def test_run_files_are_english_whatever_language_is_shown() -> None:
    from lora_tui.core.models.modules import load_inventory
    from lora_tui.core.run_setup import WORKER_ENV
    from lora_tui.i18n import _, using

    inv = load_inventory("qwen2.5-0.5b-instruct")
    with using("ja"):
        assert _("Frozen base weights") != "Frozen base weights"  # the catalogue translates it
        memory = launcher._memory(inv, TrainingPlan(model="qwen2.5-0.5b-instruct"), 8 * 10**9, None)
    assert memory is not None and memory["parts"][0]["label"] == "Frozen base weights"
    assert WORKER_ENV["LORA_TUI_LANG"] == "en"  # the training process writes the other run files
