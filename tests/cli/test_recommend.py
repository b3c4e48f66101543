"""`lora-tui recommend` user errors: one line, exit status 2, no traceback."""

from __future__ import annotations

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
])
def test_user_errors_exit_2_with_one_message(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
