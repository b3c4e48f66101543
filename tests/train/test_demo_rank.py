"""The demo model built inside a training process of rank > 0 is complete: transformers' save_pretrained writes only
on rank 0 of a torch.distributed process group, and the demo model is a cache every machine builds for itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_tui.train import demo

pytestmark = pytest.mark.slow


def test_a_rank_1_process_builds_a_complete_demo_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist
    from transformers import AutoConfig

    monkeypatch.setattr(demo, "PRETRAIN_STEPS", 0)  # the build without its minute of pre-training
    monkeypatch.setattr(dist, "is_initialized", lambda: True)  # as in a torchrun worker of rank 1
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 1)
    path = demo.ensure_demo_model(tmp_path)
    assert path == tmp_path / "demo-model" and demo.is_built(path)
    assert (path / "model.safetensors").stat().st_size > 1_000_000
    assert AutoConfig.from_pretrained(path).model_type == "llama"
    assert (path / "tokenizer.json").is_file()
    assert json.loads((path / demo.BUILD_MARKER).read_text())["pretrain_steps"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo-model.lock", "demo-model"]  # no build dir left


def test_a_build_that_wrote_no_weights_is_never_moved_into_place(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def no_weights(out_dir: Path, *, steps: int = 0) -> dict[str, object]:
        (out_dir / "tokenizer.json").write_text("{}")
        (out_dir / demo.BUILD_MARKER).write_text(json.dumps({"version": demo.BUILD_VERSION}))
        return {}

    monkeypatch.setattr(demo, "build_demo_model", no_weights)
    with pytest.raises(RuntimeError, match=r"wrote no config\.json, model\.safetensors"):
        demo.ensure_demo_model(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [".demo-model.lock"]
