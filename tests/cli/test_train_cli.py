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
    assert "recommended  (data-size table" in out
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

    fake = Path(__file__).resolve().parents[1] / "fakes" / "fake_trainer.py"
    out = tmp_path / "run"
    subprocess.run([sys.executable, str(fake), str(out), "--steps", "4", "--interval", "0", "--save-every", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    monkeypatch.setattr(launcher, "launch", lambda r: pytest.fail("a finished run must not be started again"))
    assert main(["train", "--model", "demo", "--output", str(out), "--resume", "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lora-tui: error: --resume: {out} already reached step 4 of --max-steps 4")
    assert "larger --max-steps" in err
