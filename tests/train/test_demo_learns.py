"""The demo model learns the sample: a short run with every default but the step count lowers the loss.

Uses the session's demo build (tests/train/conftest.py) and the recommended settings (the demo preset's
learning rate, batch 2 x accumulation 8), so it checks what `lora-tui train --model demo` does, in fewer steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_tui.cli import main
from lora_tui.core import run_files
from lora_tui.train.demo import BUILD_MARKER, BUILD_VERSION

pytestmark = pytest.mark.slow


def test_demo_base_is_a_pretrained_chat_model(demo_model: Path) -> None:
    from transformers import AutoTokenizer

    info = json.loads((demo_model / BUILD_MARKER).read_text())
    assert info["version"] == BUILD_VERSION and info["pretrain_steps"] > 0
    assert info["pretrain_loss_last"] < info["pretrain_loss_first"] - 3
    tok = AutoTokenizer.from_pretrained(demo_model)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
                                   tokenize=False)
    assert text == "<s><|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n"


def test_default_demo_run_loss_falls(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", "--model", "demo", "--max-steps", "16", "--save-steps", "100", "--output", str(out)]) == 0
    info = json.loads((out / "training_info.json").read_text())
    assert info["settings"]["learning_rate"]["source"] == "recommended"
    losses = [m.loss for m in run_files.read_metrics(out)[0] if m.loss is not None]
    assert len(losses) == 16
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.4, (first, last, losses)
