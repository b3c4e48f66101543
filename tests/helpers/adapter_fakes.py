"""Adapter directories written without torch (valid safetensors headers, zero weights) for fast tests."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from lora_tui.core import runs


def write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A valid F32 safetensors file with zero tensors of the given shapes."""
    header: dict[str, Any] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 4
        for d in shape:
            size *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def lora_shapes(r: int, modules: dict[str, tuple[int, int]], layers: int = 2) -> dict[str, list[int]]:
    """Saved-adapter keys and shapes for `modules` ({name: (in, out)}) in each of `layers` Llama layers."""
    shapes = {}
    for i in range(layers):
        for name, (d_in, d_out) in modules.items():
            group = "mlp" if name in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            key = f"base_model.model.model.layers.{i}.{group}.{name}"
            shapes[f"{key}.lora_A.weight"] = [r, d_in]
            shapes[f"{key}.lora_B.weight"] = [d_out, r]
    return shapes


def fake_adapter(path: Path, *, r: int = 8, alpha_key: str = "lora_alpha", alpha: float = 16,
                 base: str = "demo", state: str | None = "finished", weights: bool = True,
                 losses: list[float] | None = None, checkpoints: int = 0) -> Path:
    """A run directory holding an adapter (config, weights, status, metrics) as the training runner writes it."""
    path.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "r": r, alpha_key: alpha, "base_model_name_or_path": base,
              "target_modules": ["v_proj", "q_proj"], "lora_dropout": 0.05, "task_type": "CAUSAL_LM"}
    (path / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    if weights:
        write_safetensors(path / "adapter_model.safetensors", lora_shapes(r, {"q_proj": (256, 256),
                                                                              "v_proj": (256, 64)}))
    if state is not None:
        runs.write_status(path, runs.RunStatus(state=state, step=10))
    if losses:
        with open(path / runs.METRICS_FILE, "w", encoding="utf-8") as fh:
            for i, loss in enumerate(losses, 1):
                fh.write(json.dumps({"step": i, "loss": loss}) + "\n")
    for step in range(1, checkpoints + 1):
        ckpt = path / runs.CHECKPOINTS_DIR / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        write_safetensors(ckpt / "adapter_model.safetensors", lora_shapes(r, {"q_proj": (256, 256)}))
        (ckpt / "trainer_state.json").write_text("{}", encoding="utf-8")
        (ckpt / runs.COMPLETE_MARKER).write_text("{}", encoding="utf-8")
    return path
