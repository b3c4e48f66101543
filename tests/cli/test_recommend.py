"""`lora-tui recommend` user errors: one line, exit status 2, no traceback."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from lora_tui.cli import main
from lora_tui.core.hardware import detect as hardware


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hardware detection sees no GPU unless a test passes --vram-gb."""
    monkeypatch.setattr(hardware, "detect_hardware",
                        lambda: SimpleNamespace(usable_vram_bytes=None, backend="cpu", nvml_status="faked"))


@pytest.mark.parametrize("argv,message", [
    (["--vram-gb", "0"], "argument --vram-gb: must be a positive, finite number of GB, got 0"),
    (["--vram-gb", "nan"], "argument --vram-gb: must be a positive, finite number of GB, got nan"),
    (["--vram-gb", "inf"], "argument --vram-gb: must be a positive, finite number of GB, got inf"),
    (["--examples", "-1"], "--examples must be >= 0, got -1"),
    (["--task", "poetry"], "argument --task: invalid choice: 'poetry'"),
    (["--advice", "gut"], "argument --advice: invalid choice: 'gut'"),
])
def test_user_errors_exit_2_with_one_message(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_code_with_200_examples_gets_the_small_data_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--task", "code", "--examples", "200"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("--learning-rate"))
    assert lines[i].split() == ["--learning-rate", "1e-4", "[guide", "table]"]
    assert " ".join(lines[i + 1:i + 4]).split()[:6] == ["the", "guide's", "data-size", "table,", "row", "'<"]
    assert "note: Pass --vram-gb to plan for a GPU." in out  # the CLI names its flag
    assert "advice guide" in lines[0] and "(detected)" not in out


@pytest.mark.parametrize(("advice", "other", "lr", "other_lr"), [("guide", "practice", 5e-5, 2e-4),
                                                                  ("practice", "guide", 2e-4, 5e-5)])
def test_both_styles_in_json_with_the_other_value_and_typed_sources(advice: str, other: str, lr: float,
                                                                    other_lr: float,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--task", "chat", "--examples", "5000", "--vram-gb", "12", "--advice", advice,
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["advice"] == advice == data["inputs"]["advice"]
    assert data["values"]["learning_rate"] == lr and data["other"]["learning_rate"] == other_lr
    assert data["citations"]["learning_rate"]["kind"] == ("guide table" if advice == "guide" else
                                                          "common LoRA practice")
    assert data["citations"]["weight_decay"]["kind"] == "lora-tui"
    assert data["citations"]["weight_decay"]["where"].startswith("lora-tui's own default")
    assert data["inputs"]["vram_source"] == "12 GB (--vram-gb)"
