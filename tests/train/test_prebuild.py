"""The demo tokenizer built ahead of the model is the model's own: its token counts are the ones training sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.train.prebuild import ensure_demo_tokenizer, main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"])
def test_the_prebuilt_tokenizer_files_equal_the_demo_models(demo_model: Path, tmp_path: Path, name: str) -> None:
    built = ensure_demo_tokenizer(tmp_path)
    assert built == tmp_path / "demo-tokenizer" / "tokenizer.json"
    assert (built.parent / name).read_bytes() == (demo_model / name).read_bytes()


def test_once_the_model_is_built_its_tokenizer_is_used(demo_model: Path) -> None:
    assert ensure_demo_tokenizer(demo_model.parent) == demo_model / "tokenizer.json"


def test_the_command_builds_the_tokenizer_only_when_asked(tmp_path: Path) -> None:
    assert main(["--tokenizer-only", "--cache-dir", str(tmp_path)]) == 0
    assert (tmp_path / "demo-tokenizer" / "tokenizer.json").is_file()
    assert not (tmp_path / "demo-model").exists()
