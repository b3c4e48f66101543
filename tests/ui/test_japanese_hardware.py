"""The Hardware step's notes and NVML status, the Task step's model status and the Data step's notes in Japanese;
a switch of language from the palette shows the Hardware step's notes again in the new language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest

from lora_tui import i18n
from lora_tui.core.hardware.detect import HardwareReport, detect_hardware
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.fake_nvml import GIB, FakeGpu, FakeNvml
from tests.helpers.japanese import english_words, screen_texts


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A session in a temporary directory (its settings file too), English before and after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_TUI_CACHE", "cache")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    i18n.missing.clear()
    i18n.set_language("en")
    yield tmp_path
    i18n.set_language("en")


def _busy_turing() -> HardwareReport:
    """An 8 GiB card without bf16 whose memory other processes mostly hold: two notes besides the tier's."""
    gpu = FakeGpu("NVIDIA GeForce RTX 2070", 8 * GIB, used=6 * GIB, cc=(7, 5))
    return detect_hardware(nvml=FakeNvml([gpu]), env={})


def _no_driver() -> HardwareReport:
    """A machine whose NVIDIA driver is not loaded: the CPU fallback, NVML's reason in the notes."""
    return detect_hardware(nvml=FakeNvml([], init_error=pynvml.NVMLError_DriverNotLoaded), env={})


def _app(report: HardwareReport, **kwargs: Any):
    return make_app(hardware_probe=lambda: report, gpu_query=lambda: (report.gpus, report.nvml_status),
                    launcher=fakes.FakeLauncher(), runs_root=Path("runs"), gpu_interval=0, **kwargs)


def _english(screen: Any) -> dict[str, list[str]]:
    found = {}
    for where, text in screen_texts(screen).items():
        words = english_words(text)
        if words:
            found[where] = words
    return found


def _text(screen: Any, prefix: str) -> str:
    texts = screen_texts(screen)
    return texts[next(k for k in texts if k.startswith(prefix))]


@pytest.mark.parametrize("probe", [_busy_turing, _no_driver])
async def test_the_hardware_notes_follow_a_switch_from_the_palette(session: Path, probe: Any) -> None:
    report = probe()
    assert report.notes  # a real report says what the hardware means
    app = _app(report)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "HardwareScreen"
        english = _text(app.screen, "hw-notes") + _text(app.screen, "hw-summary")
        assert ("other processes hold" in english) if report.gpus else ("NVIDIA driver not loaded" in english)
        {c.title: c for c in app.get_system_commands(app.screen)}["Language: 日本語"].callback()
        await waits.settle(pilot)
        notes, summary = _text(app.screen, "hw-notes"), _text(app.screen, "hw-summary")
        if report.gpus:
            assert "他のプロセスが" in notes and "Compute Capability は 7.5 で bf16 をネイティブに扱えない" in notes
            assert "NVML: ok" in summary
        else:
            assert "NVIDIA ドライバーが読み込まれていません" in notes
            assert "NVML: NVIDIA ドライバーが読み込まれていません" in summary
        assert _english(app.screen) == {}
        {c.title: c for c in app.get_system_commands(app.screen)}["言語: English"].callback()
        await waits.settle(pilot)
        assert _text(app.screen, "hw-notes") == "\n".join(report.notes)  # English again, as detected
    assert i18n.missing == set()


async def test_model_status_and_data_notes_are_japanese(session: Path) -> None:
    """The Task step's model status (core/models/modules.py) and the Data step's notes (core/dataset)."""
    import json

    Path("wrapped.json").write_text(json.dumps({"data": [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}]}), encoding="utf-8")
    from lora_tui.core.plan import TrainingPlan

    i18n.set_language("ja")
    app = _app(fakes.hardware(8), plan=TrainingPlan(data="wrapped.json"))
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "DataScreen"
        notes = _text(app.screen, "data-notes")
        assert "トップレベルのフィールド 'data' からレコードを読みます" in notes
        assert english_words(notes, left_for_later=(r"'data'",)) == []
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "TaskScreen"
        status = _text(app.screen, "model-status")
        assert "デモモデルはまだ作成されていません" in status and english_words(status) == []
    assert i18n.missing == set()
