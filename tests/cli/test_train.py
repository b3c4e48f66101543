"""`lora-tui train` before any training: guide command lines in --dry-run, refusals, no heavy imports."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lora_tui.cli import main
from tests.helpers import FAKE_TRAINER

GUIDE_COMMANDS = [
    "--model google/gemma-3-1b-it --lora-r 16 --lora-alpha 32 --lora-dropout 0.05 --learning-rate 5e-5",
    "--model google/gemma-3-1b-it --lora-r 32 --lora-alpha 64 --lora-dropout 0.1 --learning-rate 3e-5",
    "--model google/gemma-3-1b-it --lora-r 24 --lora-alpha 48 --lora-dropout 0.05 --learning-rate 2e-5",
    "--model google/gemma-3-1b-it --lora-r 8 --lora-alpha 16 --lora-dropout 0.05 --learning-rate 1e-4",
    "--model google/gemma-3-1b-it --data data/japanese_chat.jsonl --lora-r 16 --lora-alpha 32 "
    "--lora-dropout 0.05 --epochs 3 --batch-size 2 --learning-rate 5e-5 --output models/japanese_chat",
    "--model google/gemma-3-1b-it --data data/code_assistant.jsonl --lora-r 24 --lora-alpha 48 "
    "--lora-dropout 0.05 --epochs 5 --batch-size 4 --learning-rate 3e-5 --output models/code_assistant",
    "--model google/gemma-3-1b-it --lora-r 8 --lora-alpha 16 --lora-dropout 0.1 --epochs 2 --batch-size 1 "
    "--gradient-accumulation-steps 16 --learning-rate 1e-4 --output models/lightweight",
    "--lora-r 4 --lora-alpha 8 --batch-size 1 --gradient-accumulation-steps 16",
    "--lora-r 16 --lora-alpha 32 --batch-size 2 --gradient-accumulation-steps 8",
    "--lora-r 32 --lora-alpha 64 --batch-size 4 --gradient-accumulation-steps 4",
    "--batch-size 1 --lora-r 8",
]
"""Every `python scripts/train_lora.py` command line (and flag fragment) in the guide."""

CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


@pytest.fixture
def guide_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding the guide's data files."""
    (tmp_path / "data").mkdir()
    for name in ("japanese_chat.jsonl", "code_assistant.jsonl"):
        (tmp_path / "data" / name).write_text("\n".join(json.dumps(CHAT) for _ in range(20)) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("line", GUIDE_COMMANDS)
def test_guide_command_lines_accepted_by_dry_run(line: str, guide_cwd: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    args = shlex.split(line)
    assert main(["train", *args, "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    given = dict(zip(args[::2], args[1::2], strict=True))
    plan = out["plan"]
    assert plan["lora_r"] == int(given["--lora-r"])
    assert out["sources"]["lora_r"] == "given"
    if "--lora-alpha" in given:
        assert plan["lora_alpha"] == float(given["--lora-alpha"])
    if "--learning-rate" in given:
        assert plan["learning_rate"] == float(given["--learning-rate"])
    if "--epochs" in given:
        assert plan["num_train_epochs"] == float(given["--epochs"])
        assert out["sources"]["num_train_epochs"] == "given"
    if "--model" in given:  # weights of a preset are not on this machine: warned, still a success
        assert out["model_available"] is False
        assert any("not in the local cache" in w for w in out["warnings"])
    assert out["memory"]["total_bytes"] > 0
    assert not (guide_cwd / "models").exists()  # a dry run writes nothing


def test_dry_run_text_has_sources_math_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "demo", "--lora-r", "4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lora_r                       4                        given" in out
    assert "recommended  (the guide's data-size table" in out
    assert re.search(r"^q_proj +256 -> 256 +4 ", out, re.M)
    # the demo preset's own targets: the guide's maximum pattern, with its reason
    assert re.search(r"^down_proj +768 -> 256 +4 ", out, re.M)
    assert "model preset 'demo': target_modules" in out
    assert "Peak training memory" in out


@pytest.mark.parametrize(("flags", "needle"), [
    (["--lora-r", "0"], "`lora_r` (--lora-r) must be a positive integer"),
    (["--lora-dropout", "1"], "`lora_dropout` (--lora-dropout) must be in [0, 1)"),
    (["--learning-rate", "0"], "`learning_rate` (--learning-rate) must be > 0"),
    (["--target-modules", "q_proj,c_attn"], "--target-modules: c_attn matches no module"),
    (["--data", "missing.jsonl"], "missing.jsonl"),
])
def test_invalid_settings_refused(flags: list[str], needle: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "demo", *flags, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: error:") and needle in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_data_errors_listed_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(CHAT) + "\n{not json\n" + json.dumps(CHAT) + "\n")
    assert main(["train", "--model", "demo", "--data", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err


def test_model_not_available_offline_refused_for_a_real_run(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "google/gemma-3-1b-it", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not in the local cache" in err and "--model demo" in err
    assert not (tmp_path / "o").exists()


def test_non_empty_output_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["train", "--model", "demo", "--output", str(out), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "directory is not empty" in err and "--overwrite" in err
    assert (out / "notes.txt").read_text() == "mine"
    assert main(["train", "--model", "demo", "--output", str(out), "--resume"]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err


def test_dry_run_imports_no_training_stack(tmp_path: Path) -> None:
    code = ("import sys; from lora_tui.cli import main; rc = main(['train','--model','demo','--dry-run']); "
            "heavy = [m for m in ('torch','transformers','peft','trl','datasets','accelerate') if m in sys.modules]; "
            "print('HEAVY', heavy); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_given_batch_keeps_effective_batch_and_given_r_keeps_alpha_ratio(tmp_path, capsys) -> None:
    from lora_tui.cli import main

    out = tmp_path / "run"
    assert main(["train", "--model", "demo", "--lora-r", "24", "--batch-size", "4", "--output", str(out),
                 "--dry-run"]) == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:3] for line in text.splitlines() if line.startswith("  ")}
    assert rows["lora_alpha"] == ["48", "recommended"]
    assert rows["per_device_train_batch_size"] == ["4", "given"]
    assert rows["gradient_accumulation_steps"] == ["4", "recommended"]
    assert "16 (the recommended effective batch) / batch 4 = 4" in text


@pytest.mark.parametrize(("flags", "config", "needle"), [
    (["--vram-gb", "-3"], None, "argument --vram-gb: must be a positive, finite number of GB"),
    (["--vram-gb", "0"], None, "argument --vram-gb: must be a positive, finite number of GB"),
    (["--batch-size", "0"], None, "`per_device_train_batch_size` (--batch-size) must be a positive integer"),
    ([], "[plan]\nper_device_train_batch_size = 0\n", "must be a positive integer, got 0"),
    ([], "[plan]\nlora_r = \"x\"\n", "`lora_r` (--lora-r) must be a positive integer"),
    ([], "[plan]\nlora_rank = 4\n", "unknown setting(s) lora_rank"),
    ([], "[plan]\nnum_processes = \"x\"\n", "`num_processes` (--num-processes) must be a positive integer"),
])
def test_bad_values_refused_without_traceback(flags: list[str], config: str | None, needle: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    if config is not None:
        (tmp_path / "run.toml").write_text(config)
        flags = [*flags, "--config", str(tmp_path / "run.toml")]
    assert main(["train", "--model", "demo", *flags, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: error:") and needle in err, err
    if config is not None and "unknown" in needle:
        assert str(tmp_path / "run.toml") in err


def test_output_that_cannot_be_created_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("mine")
    assert main(["train", "--model", "demo", "--output", str(tmp_path / "a-file" / "run"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lora-tui: error: --output {tmp_path / 'a-file' / 'run'}: cannot create the run directory")
    monkeypatch.setenv("LORA_TUI_RUNS", str(tmp_path / "a-file"))  # the default output root is a file
    assert main(["train", "--model", "demo", "--max-steps", "1"]) == 2
    assert "cannot create the run directory" in capsys.readouterr().err
    assert (tmp_path / "a-file").read_text() == "mine"


def test_following_a_resumed_run_prints_only_its_new_log_and_quotes_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from lora_tui.core import launcher, runs

    run_dir = tmp_path / "my run"
    run_dir.mkdir()
    (run_dir / runs.LOG_FILE).write_text("step 3/3 of the first run\n")
    (run_dir / runs.INFO_FILE).write_text("[]")  # damaged: the summary skips it
    for name in runs.ADAPTER_FILES:
        (run_dir / name).write_text("{}")

    class FinishedProc:
        pid, returncode = 4242, 0

        def poll(self) -> int:
            with open(run_dir / runs.LOG_FILE, "a") as log:
                log.write("step 4/5 of the resumed run\n")
            return 0

    resolved = SimpleNamespace(warnings=[], mode="resume", plan=SimpleNamespace(output=str(run_dir)))
    monkeypatch.setattr(launcher, "resolve_run", lambda *a, **k: resolved)
    monkeypatch.setattr(launcher, "launch", lambda r: (run_dir, FinishedProc()))
    assert main(["train", "--output", str(run_dir), "--resume"]) == 1  # no status.json: not `finished`
    out = capsys.readouterr().out
    assert "step 4/5 of the resumed run" in out and "first run" not in out
    assert f"lora-tui adapters try '{run_dir}' --prompt" in out
    assert f"--output '{run_dir}-merged'" in out


def test_resume_of_a_run_that_reached_its_max_steps_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from lora_tui.core import launcher

    fake = FAKE_TRAINER
    out = tmp_path / "run"
    subprocess.run([sys.executable, str(fake), str(out), "--steps", "4", "--interval", "0", "--save-every", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    monkeypatch.setattr(launcher, "launch", lambda r: pytest.fail("a finished run must not be started again"))
    assert main(["train", "--model", "demo", "--output", str(out), "--resume", "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lora-tui: error: --resume: {out} already reached step 4 of --max-steps 4")
    assert "larger --max-steps" in err


# ---- nothing lost: --overwrite, special files, unusable outputs, disk space, two writers ---------------


FAKE = FAKE_TRAINER


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`lora-tui train` starts the fake trainer instead of the training process; killed afterwards."""
    import os
    import signal

    from lora_tui.core import launcher

    started: list[int] = []
    real_start = launcher.start_worker

    def start(*args, **kwargs):  # type: ignore[no-untyped-def]
        proc = real_start(*args, **kwargs)
        started.append(proc.pid)
        return proc

    monkeypatch.setattr(launcher, "worker_command", lambda run_dir, **kw: [
        sys.executable, str(FAKE), str(run_dir), "--steps", "3", "--interval", "0.01"])
    monkeypatch.setattr(launcher, "start_worker", start)
    yield started
    for pid in started:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _finished_fake_run(out: Path) -> None:
    subprocess.run([sys.executable, str(FAKE), str(out), "--steps", "2", "--interval", "0"], check=True,
                   stdout=subprocess.DEVNULL)
    (out / "run.toml").write_text("[plan]\nmodel = \"demo\"\n")


def test_overwrite_never_deletes_what_lora_tui_did_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "d"
    mine.mkdir()
    (mine / "thesis.txt").write_text("x")
    assert main(["train", "--model", "demo", "--output", str(mine), "--overwrite"]) == 2
    assert "--overwrite refused: it is not a lora-tui run directory" in capsys.readouterr().err
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "data.jsonl").write_text("\n".join(json.dumps(CHAT) for _ in range(20)) + "\n")
    (proj / "src.py").write_text("print(1)\n")
    assert main(["train", "--model", "demo", "--data", str(proj / "data.jsonl"), "--output", str(proj),
                 "--overwrite"]) == 2
    assert "--overwrite refused: it contains the training data" in capsys.readouterr().err
    monkeypatch.chdir(proj)
    assert main(["train", "--model", "demo", "--output", ".", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite refused: it is the current directory" in err and "Traceback" not in err
    assert (mine / "thesis.txt").read_text() == "x" and sorted(p.name for p in proj.iterdir()) == ["data.jsonl",
                                                                                                   "src.py"]


def test_overwrite_of_a_run_replaces_it(tmp_path: Path, fake_worker: list[int],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from lora_tui.core import runs

    out = tmp_path / "run"
    _finished_fake_run(out)
    assert main(["train", "--model", "demo", "--max-steps", "3", "--output", str(out), "--overwrite",
                 "--detach"]) == 0
    status = runs.read_status(out)
    assert status is not None and status.pid == fake_worker[0]


@pytest.mark.parametrize(("kind", "needle"), [("fifo", "is a FIFO (named pipe), not a regular file"),
                                              ("device", "is a character device, not a regular file"),
                                              ("dir", "is a directory")])
def test_a_special_file_as_config_is_refused_without_hanging(kind: str, needle: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import os

    path = tmp_path / "run.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    assert main(["train", "--model", "demo", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lora-tui: error: {path}: {needle}") and len(err.splitlines()) == 1


def test_an_output_that_is_a_symlink_loop_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert main(["train", "--model", "demo", "--max-steps", "1", "--output", str(loop)]) == 2
    err = capsys.readouterr().err
    assert err == f"lora-tui: error: --output {loop}: a symbolic link loop; point --output at a real directory\n"


def test_disk_space_is_checked_before_the_run_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    fake_worker: list[int],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import shutil
    from collections import namedtuple

    from lora_tui.core.units import MIB

    usage = namedtuple("usage", "total used free")
    free = {"bytes": 10 * MIB}
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 0, free["bytes"]))
    out = tmp_path / "run"
    assert main(["train", "--model", "demo", "--max-steps", "3", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "10.0 MiB free on its disk, the run needs at least" in err and "optimizer state" in err
    assert not out.exists()
    free["bytes"] = 30 * MIB  # one checkpoint fits, all it keeps may not
    assert main(["train", "--model", "demo", "--max-steps", "200", "--save-steps", "10", "--output", str(out),
                 "--detach"]) == 0
    assert "lora-tui: warning: --output" in capsys.readouterr().err and fake_worker


CLI_RACE = r"""
import sys, time
from lora_tui.core import launcher
from lora_tui.cli import main
fake, start_at, out = sys.argv[1:]
launcher.worker_command = lambda run_dir, **kw: [sys.executable, fake, str(run_dir), "--steps", "100000",
                                                 "--interval", "0.05"]
real_launch = launcher.launch
def launch(resolved):
    time.sleep(max(0.0, float(start_at) - time.time()))  # after every check `train` makes, both at once
    return real_launch(resolved)
launcher.launch = launch
sys.exit(main(["train", "--model", "demo", "--max-steps", "5", "--output", out, "--detach"]))
"""


def test_two_train_detach_started_together_exactly_one_runs(tmp_path: Path) -> None:
    import os
    import signal
    import time

    from lora_tui.core import runs

    for i in range(3):
        out = tmp_path / f"same{i}"
        start_at = time.time() + 3
        procs = [subprocess.Popen([sys.executable, "-c", CLI_RACE, str(FAKE), str(start_at), str(out)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        status = runs.read_status(out)
        try:
            assert sorted(rc for rc, _, _ in results) == [0, 2], results
            err = next(e for rc, _, e in results if rc == 2)
            assert "another lora-tui process is starting or running a run there" in err or \
                "directory is not empty" in err or "a run is in progress there" in err, err
            assert "Traceback" not in err
        finally:
            if status is not None and status.pid:
                os.killpg(status.pid, signal.SIGKILL)
