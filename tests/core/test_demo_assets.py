"""The demo tokenizer built ahead of the model: found, built on first need, and the background build's switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.core import demo_assets
from lora_tui.core.dataset.tokens import find_tokenizer_file, local_tokenizer


def test_the_demo_models_own_tokenizer_is_preferred(tmp_path: Path) -> None:
    assert demo_assets.demo_tokenizer_file(tmp_path) is None
    (tmp_path / "demo-tokenizer").mkdir()
    (tmp_path / "demo-tokenizer" / "tokenizer.json").write_text("{}")
    assert demo_assets.demo_tokenizer_file(tmp_path) == tmp_path / "demo-tokenizer" / "tokenizer.json"
    (tmp_path / "demo-model").mkdir()
    (tmp_path / "demo-model" / "tokenizer.json").write_text("{}")
    assert demo_assets.demo_tokenizer_file(tmp_path) == tmp_path / "demo-model" / "tokenizer.json"


def test_build_demo_tokenizer_builds_it_once_in_a_child_process(tmp_path: Path) -> None:
    built = demo_assets.build_demo_tokenizer(tmp_path)
    assert built == tmp_path / "demo-tokenizer" / "tokenizer.json" and built.is_file()
    assert (tmp_path / "demo-tokenizer" / "tokenizer_config.json").is_file()
    assert "{% generation %}" in (tmp_path / "demo-tokenizer" / "chat_template.jinja").read_text()
    stamp = built.stat().st_mtime_ns
    assert demo_assets.build_demo_tokenizer(tmp_path) == built and built.stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo-tokenizer.") and p.is_dir()]


def test_local_tokenizer_for_demo_builds_the_tokenizer_when_missing(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path))
    assert local_tokenizer("demo") == tmp_path / "demo-tokenizer" / "tokenizer.json"
    assert find_tokenizer_file("demo") == tmp_path / "demo-tokenizer" / "tokenizer.json"


def test_a_failed_build_is_one_line_naming_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lora_tui.errors import UserError

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache should be")
    monkeypatch.setenv("LORA_TUI_CACHE", str(blocker))
    assert local_tokenizer("demo") is None
    with pytest.raises(UserError, match=r"building the demo tokenizer failed; see .*prebuild\.log"):
        find_tokenizer_file("demo")


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_the_background_build_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  value: str) -> None:
    monkeypatch.setenv("LORA_TUI_PREBUILD", value)
    assert demo_assets.start_prebuild(tokenizer_only=True, cache=tmp_path) is False
    assert not (tmp_path / demo_assets.PREBUILD_LOG).exists()


def test_the_background_build_runs_once_and_leaves_the_tokenizer(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_TUI_PREBUILD", "1")
    monkeypatch.setattr(demo_assets, "_started", None)
    assert demo_assets.start_prebuild(tokenizer_only=True, cache=tmp_path) is True
    first = demo_assets._started
    assert demo_assets.start_prebuild(tokenizer_only=True, cache=tmp_path) is True
    assert demo_assets._started is first  # not a second process
    assert first is not None and first.wait(timeout=120) == 0
    assert demo_assets.demo_tokenizer_file(tmp_path) == tmp_path / "demo-tokenizer" / "tokenizer.json"
    assert demo_assets.start_prebuild(tokenizer_only=True, cache=tmp_path) is False  # nothing left to build
