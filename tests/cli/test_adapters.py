"""`lora-tui adapters` end to end through the CLI entry point (exit codes, output, one-line errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_tui.cli import main
from tests.helpers import FAKE_TRAINER
from tests.helpers.adapter_fakes import fake_adapter


def test_list_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_adapter(tmp_path / "a-finished", losses=[2.0, 1.5])
    fake_adapter(tmp_path / "b-guide", alpha_key="alpha", alpha=32, state=None)
    assert main(["adapters", "list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "STATE", "BASE", "R", "ALPHA", "TARGETS", "SIZE", "DATE", "LOSS", "CKPTS"]
    finished = next(r for r in rows if r.startswith("a-finished"))
    assert finished.split()[1:5] == ["finished", "demo", "8", "16"] and "1.5000" in finished
    assert any("! uses the key `alpha` (32); PEFT reads `lora_alpha`" in r for r in rows)
    assert main(["adapters", "list", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {a["name"]: a["state"] for a in data["adapters"]} == {"a-finished": "finished", "b-guide": "saved"}


def test_list_default_root_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "list"]) == 0
    assert "No adapters under" in capsys.readouterr().out


def test_show_text_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = fake_adapter(tmp_path / "run", losses=[1.0])
    assert main(["adapters", "show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "rank r = 8, lora_alpha = 16: scaling alpha / r = 2" in out and "adapter_model.safetensors" in out
    assert main(["adapters", "show", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: error: ") and "no such adapter directory" in err and "Traceback" not in err


def test_try_plain_output(adapter_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["adapters", "try", str(adapter_pair[0]), "--prompt", "hello", "--prompt", "world",
               "--max-new-tokens", "6", "--device", "cpu"])
    assert rc == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.count("=== ") == 2 and out.count("--- base") == 2 and out.count("--- chat") == 2
    # not a terminal: one progress line per stage on stderr, in order
    stages = [line.split(":")[0].split(" (")[0] for line in captured.err.splitlines()]
    assert stages[0].startswith("loading base model ") and stages[1] == "loading adapter chat onto the base…"
    assert stages[2:6] == ["generating the base model's answer", "generating the chat's answer"] * 2
    assert "tokens" in captured.err.splitlines()[2] and len(stages) == 7  # and the final line


def test_progress_line_rewrites_one_line_on_a_terminal() -> None:
    import io

    from lora_tui.cli.adapters import ProgressLine
    from lora_tui.core.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    line = ProgressLine(stream)
    line(Progress("merging", 1, 4, "modules", 1.0))
    line(Progress("merging", 2, 4, "modules", 2.0))
    line(Progress("merged into out", elapsed=3.0, final=True))
    assert stream.getvalue() == ("\r\033[Kmerging: 1/4 modules, about 3s left\r\033[Kmerging: 2/4 modules, about "
                                 "2s left\r\033[Kmerged into out (3s)\n")


def test_compare_json_matches_session(adapter_pair: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\nhello\n\n", encoding="utf-8")
    rc = main(["adapters", "compare", *map(str, adapter_pair), "--prompts", str(prompts), "--json",
               "--max-new-tokens", "6", "--device", "cpu"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    [result] = data["results"]
    assert result["prompt"] == "hello" and list(result["answers"]) == ["base", "chat", "code"]
    from lora_tui.inference.session import AdapterSession, GenerationSettings

    session = AdapterSession.for_adapters([adapter_pair[1]], device="cpu")
    assert result["answers"]["code"] == session.answer("hello", "code", GenerationSettings(max_new_tokens=6))


def test_try_needs_a_prompt(adapter_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "try", str(adapter_pair[0])]) == 2
    assert "give at least one --prompt" in capsys.readouterr().err


def test_merge_cli(adapter_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "merged"
    assert main(["adapters", "merge", str(adapter_pair[0]), "--output", str(out), "--dtype", "fp32",
                 "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "merging on the CPU (requested)" in captured.err and "AutoModelForCausalLM.from_pretrained" in captured.out
    err = captured.err.splitlines()
    assert [line.split(" ")[0] for line in err] == ["plan:", "loading", "loading", "merging:", "saving", "moving",
                                                   "merged"]
    assert err[3].startswith("merging: W <- W + scaling x B @ A: 0/") and err[-1].startswith(f"merged into {out} (")
    assert main(["adapters", "merge", str(adapter_pair[0]), "--output", str(out)]) == 2
    assert "directory is not empty" in capsys.readouterr().err


def test_show_per_layer_math_of_local_base(adapter_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "show", str(adapter_pair[1])]) == 0
    out = capsys.readouterr().out
    # r 8 on 2 layers of hidden 64: q 64->64, k/v 64->32, o 64->64, gate/up 64->128, down 128->64
    assert "trainable parameters: 16,384 of" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if "LoRA" in line and "->" in line}
    assert rows["k_proj"][1:4] == ["64", "->", "32"] and rows["down_proj"][-1] == "3,072"


def test_show_summarises_training_info() -> None:
    from lora_tui.core.adapter_report import training_summary

    info = {"data": {"path": "d.jsonl", "examples": 360, "shape": "messages"}, "steps": 69, "tokens_seen": 44616,
            "timings": {"wall_seconds": 42.5}, "precision": "fp32", "first_loss": 7.95, "final_loss": 5.01,
            "best_loss": 4.93, "memory": {"estimate": {"total_bytes": 2**30}, "measured": None},
            "versions": {"torch": "2.13.0", "peft": "0.21.2"}}
    assert training_summary(info) == [
        "data: d.jsonl (360 examples, messages)",
        "steps: 69, tokens seen: 44,616, 42 s, precision fp32",
        "loss: first loss 7.9500, final loss 5.0100, best loss 4.9300",
        "memory: estimated 1.00 GiB (nothing measured)",
        "versions: torch 2.13.0, peft 0.21.2",
    ]
    measured = {**info, "memory": {"estimate": {"total_bytes": 2**30}, "measured": {"peak_allocated_bytes": 2**29}}}
    assert training_summary(measured)[3] == "memory: estimated 1.00 GiB, measured 0.50 GiB peak allocated (ratio 0.50)"
    cpu = {**info, "memory": {"estimate": {"total_bytes": 2**30},
                              "measured": {"device": "cpu", "peak_rss_growth_bytes": 3 * 2**28}}}
    assert training_summary(cpu)[3] == ("memory: estimated 1.00 GiB, measured 0.75 GiB peak resident-set growth on "
                                        "the CPU (ratio 0.75)")


def test_prompts_file_not_utf8_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = fake_adapter(tmp_path / "run", losses=[1.0])
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(b"\xff\xfehello\n")
    assert main(["adapters", "try", str(run), "--prompts", str(prompts)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lora-tui: error: --prompts {prompts}: not UTF-8 text") and "Traceback" not in err


def test_device_without_backend_is_a_user_error() -> None:
    import torch

    from lora_tui.errors import UserError
    from lora_tui.inference.session import pick_device

    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(UserError, match=r"--device mps: no Apple GPU \(MPS\) is available; use --device cpu"):
        pick_device("mps")


def test_compare_the_same_adapter_twice_is_refused(tmp_path, capsys) -> None:
    from lora_tui.cli import main

    adapter = tmp_path / "a"
    adapter.mkdir()
    assert main(["adapters", "compare", str(adapter), str(tmp_path / "." / "a"), "--prompt", "hi"]) == 2
    assert "is the same adapter as" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["try", "compare"])
def test_a_fifo_or_device_as_prompts_is_refused_without_hanging(command: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import os

    paths = [str(fake_adapter(tmp_path / "a", losses=[1.0]))]
    if command == "compare":
        paths.append(str(fake_adapter(tmp_path / "b", losses=[1.0])))
    fifo = tmp_path / "prompts.fifo"
    os.mkfifo(fifo)
    for prompts, kind in ((fifo, "a FIFO (named pipe)"), (Path("/dev/zero"), "a character device")):
        assert main(["adapters", command, *paths, "--prompts", str(prompts)]) == 2
        err = capsys.readouterr().err
        assert err == f"lora-tui: error: --prompts {prompts}: is {kind}, not a regular file; give a prompts file\n"


def test_merge_refuses_a_run_that_is_still_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys
    import time

    from lora_tui.core import runs

    fake = FAKE_TRAINER
    run = fake_adapter(tmp_path / "run", losses=[1.0])  # a stale adapter from an earlier end
    proc = subprocess.Popen([sys.executable, str(fake), str(run), "--steps", "1000", "--interval", "0.02"],
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 30
        while (runs.read_status(run) or runs.RunStatus()).state != "running" and time.time() < deadline:
            time.sleep(0.05)
        assert main(["adapters", "merge", str(run), "--output", str(tmp_path / "merged")]) == 2
        err = capsys.readouterr().err
        assert f"{run}: its run is still running (step" in err and "lora-tui runs stop" in err
        assert not (tmp_path / "merged").exists()
    finally:
        proc.kill()
        proc.wait()


def test_the_first_ctrl_c_asks_to_stop_and_the_second_interrupts(capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal
    import threading

    from lora_tui.cli.adapters import cancel_on_interrupt

    cancel = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), cancel_on_interrupt(cancel, "the merge"):
        os.kill(os.getpid(), signal.SIGINT)
        assert cancel.is_set()
        os.kill(os.getpid(), signal.SIGINT)
    assert "stopping the merge at the next safe point" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before
