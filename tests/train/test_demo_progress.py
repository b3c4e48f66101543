"""The demo model's pre-training keeps its progress file, which `core.demo_progress` reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lora_tui.core.demo_progress import PROGRESS_FILE, read_progress

pytestmark = pytest.mark.slow


def _tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256)
    return LlamaForCausalLM(config)


def test_pretrain_with_a_few_steps_writes_its_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lora_tui.train import demo

    monkeypatch.setattr(demo, "_pretrain_token_stream", lambda tokenizer: [i % 64 for i in range(demo.PRETRAIN_SEQ
                                                                                                    * 16)])
    seen: list[tuple[str, int, int]] = []
    write = demo.write_progress

    def spy(build_dir: Path, **kwargs) -> None:
        write(build_dir, **kwargs)
        progress = read_progress(build_dir)  # every write leaves a complete file
        assert progress is not None
        seen.append((progress.stage, progress.step, progress.total))

    monkeypatch.setattr(demo, "write_progress", spy)
    monkeypatch.setattr(demo, "PROGRESS_EVERY_S", 0.0)
    started = time.time()
    losses = demo.pretrain(_tiny_model(), tokenizer=None, steps=3, progress_dir=tmp_path)
    assert len(losses) == 3
    assert seen == [("pretraining", 0, 3), ("pretraining", 1, 3), ("pretraining", 2, 3), ("pretraining", 3, 3)]
    last = read_progress(tmp_path)
    assert last is not None and last.step == 3 and 0 < last.elapsed <= time.time() - started
    assert (tmp_path / PROGRESS_FILE).is_file()


def test_pretrain_without_a_build_directory_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    from lora_tui.train import demo

    monkeypatch.setattr(demo, "_pretrain_token_stream", lambda tokenizer: [i % 64 for i in range(demo.PRETRAIN_SEQ
                                                                                                    * 16)])
    monkeypatch.chdir(tmp_path)
    assert len(demo.pretrain(_tiny_model(), tokenizer=None, steps=2)) == 2
    assert list(tmp_path.iterdir()) == []
