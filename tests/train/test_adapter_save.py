"""Saving an adapter whole: past FSDP's activation-checkpoint wrappers, and never an adapter without weights.

The wrappers are the ones accelerate puts around each decoder layer under FSDP (`checkpoint_wrapper`); no process
group is needed to show what they do to PEFT's save (test_fsdp_cpu runs the whole FSDP path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lora_tui.train import resume
from lora_tui.train.distributed import plain_module_names


class _Layer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q_proj(x)


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([_Layer(), _Layer()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def _wrapped_peft_model() -> Any:
    from peft import LoraConfig, get_peft_model
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    model = get_peft_model(_Model(), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    layers = model.base_model.model.layers
    for i in range(len(layers)):
        layers[i] = checkpoint_wrapper(layers[i])  # as accelerate's fsdp2_apply_ac does
    return model


def test_peft_finds_the_adapter_only_with_the_wrappers_out_and_they_are_put_back() -> None:
    from peft import get_peft_model_state_dict

    model = _wrapped_peft_model()
    state = model.state_dict()  # the wrappers' names are left out, as in FSDP's gathered state dict
    assert "base_model.model.layers.0.q_proj.lora_A.default.weight" in state
    assert get_peft_model_state_dict(model, state_dict=state) == {}  # what PEFT saved before: nothing
    before = [name for name, _ in model.named_modules()]
    with plain_module_names(model):
        saved = get_peft_model_state_dict(model, state_dict=state)
    assert sorted(saved) == [f"base_model.model.layers.{i}.q_proj.lora_{ab}.weight" for i in (0, 1) for ab in "AB"]
    assert [name for name, _ in model.named_modules()] == before  # the wrappers are back
    assert model(torch.ones(1, 8)).shape == (1, 8)


def test_the_final_adapter_is_saved_whole_through_the_wrappers(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model = _wrapped_peft_model()
    resume.save_final_adapter(model, None, tmp_path, state_dict=model.state_dict())
    assert len(load_file(tmp_path / "adapter_model.safetensors")) == 4
    assert (tmp_path / "adapter_config.json").is_file()


def test_an_adapter_saved_without_weights_fails_the_save_and_leaves_the_previous_one(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    class Empty(torch.nn.Module):
        def save_pretrained(self, path: str, **_: object) -> None:
            save_file({}, str(Path(path) / "adapter_model.safetensors"), metadata={"format": "pt"})
            (Path(path) / "adapter_config.json").write_text('{"r": 8}')

    (tmp_path / "adapter_model.safetensors").write_bytes(b"previous")
    (tmp_path / "adapter_config.json").write_text('{"r": 4}')
    with pytest.raises(RuntimeError, match="the final adapter was not saved whole: adapter_model.safetensors: "
                                           "holds no weights"):
        resume.save_final_adapter(Empty(), None, tmp_path)
    assert (tmp_path / "adapter_model.safetensors").read_bytes() == b"previous"
    assert (tmp_path / "adapter_config.json").read_text() == '{"r": 4}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
