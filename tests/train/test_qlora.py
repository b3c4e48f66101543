"""QLoRA end to end on the CPU (bitsandbytes' CPU backend): `lora-tui train --model demo --load-in-4bit` trains to
completion, the adapter loads in PEFT onto the 4-bit base, and the run records its estimate and measured memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_tui.cli import main
from lora_tui.core import runs

pytestmark = pytest.mark.slow
SMALL = ["--model", "demo", "--batch-size", "1", "--gradient-accumulation-steps", "1", "--max-seq-length", "128"]


def test_demo_trains_in_4bit_and_the_adapter_loads_onto_the_4bit_base(demo_model: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lora_tui.train.quant import quantization_config

    out = tmp_path / "run"
    assert main(["train", *SMALL, "--load-in-4bit", "--max-steps", "4", "--save-steps", "100",
                 "--output", str(out)]) == 0
    status = runs.read_status(out)
    assert status is not None and status.state == "finished" and status.step == 4
    info = json.loads((out / "training_info.json").read_text())
    assert info["settings"]["load_in_4bit"] == {"value": True, "source": "given"}
    assert info["load_in_4bit"] is True and info["precision"] == "fp32" and "CPU" in info["precision_reason"]
    estimate, measured = info["memory"]["estimate"], info["memory"]["measured"]
    assert estimate["settings"]["load_in_4bit"] is True and estimate["parts"][0]["label"] \
        == "Frozen base weights (4-bit)"
    assert measured["device"] == "cpu" and measured["peak_rss_growth_bytes"] > 0
    assert measured["first_steps"]["steps"] == 3
    # the estimate is of the worst padded batch the data makes; on the CPU it counts the runtime's measured fixed cost
    # and the fp32 weights bitsandbytes reads before quantising (measured here: ratio 1.33)
    assert estimate["settings"]["seq_len"] < 128 and "worst padded batch" in estimate["settings"]["seq_basis"]
    assert {"cpu_runtime", "cpu_4bit_load"} <= {part["key"] for part in estimate["parts"]}
    assert 0.5 < info["memory"]["measured_over_estimate"] < 2.5
    # status.json has the peak as of the end of training (saving the adapter comes after it)
    assert 0 < status.extra["memory"]["peak_rss_growth_bytes"] <= measured["peak_rss_growth_bytes"]

    base = AutoModelForCausalLM.from_pretrained(str(demo_model), quantization_config=quantization_config("fp32"),
                                                device_map={"": "cpu"})
    model = PeftModel.from_pretrained(base, str(out))
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(q_proj.base_layer).__name__ == "Linear4bit"
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and max(float(p.abs().max()) for p in lora_b) > 0  # trained: lora_B starts at zero
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape[:2] == (1, 3) and bool(torch.isfinite(logits).all())


def test_4bit_with_dora_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *SMALL, "--load-in-4bit", "--use-dora", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--load-in-4bit" in err and "--use-dora" in err


def test_4bit_on_a_moe_model_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "mixtral-8x7b", "--load-in-4bit", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fused 3-D weights" in err


def test_two_processes_train_in_4bit_data_parallel(demo_model: Path, tmp_path: Path) -> None:
    """QLoRA with DDP (gloo here): each process loads its own 4-bit base, and the adapter they train is whole."""
    from safetensors.torch import load_file

    out = tmp_path / "ddp"
    assert main(["train", *SMALL, "--load-in-4bit", "--num-processes", "2", "--max-steps", "3", "--save-steps", "100",
                 "--output", str(out)]) == 0
    status = runs.read_status(out)
    assert status is not None and status.state == "finished" and status.step == 3
    assert status.extra["world_size"] == 2
    weights = load_file(out / "adapter_model.safetensors")
    targets = json.loads((out / "adapter_config.json").read_text())["target_modules"]
    assert len(weights) == 2 * 4 * len(targets)  # A and B of every target in the demo's 4 layers
    assert any(float(w.abs().sum()) > 0 for k, w in weights.items() if "lora_B" in k)
