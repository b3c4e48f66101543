"""Loading the base model for training: 16-bit as it is, or 4-bit NF4 for QLoRA (`--load-in-4bit`).

QLoRA loading follows the QLoRA paper and PEFT's recipe: bitsandbytes NF4 with double quantization, the compute
dtype from the run's precision, then PEFT's `prepare_model_for_kbit_training` (norms, embeddings and the LM head in
fp32, input gradients for checkpointing). TRL's SFTTrainer then casts the LoRA weights of a quantised model to bf16.
bitsandbytes 0.50 has CPU kernels too, so the same path trains on the CPU (slowly) and on CUDA. Where it cannot run,
`FourBitUnavailable` says why in one line, in the language shown: the run's status shows it in English (the
training process runs in English), `lora-tui adapters try` in the language of its command.
"""

from __future__ import annotations

import os
from typing import Any

from lora_tui.i18n import _

NF4 = "nf4"
"""bitsandbytes' 4-bit NormalFloat type (QLoRA)."""


class FourBitUnavailable(RuntimeError):
    """4-bit loading cannot run here; the message is one line saying why and what to do."""


def torch_dtype(precision: str) -> Any:
    """bf16/fp16/fp32 -> the torch dtype."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def device_kind() -> str:
    """cuda, mps or cpu: where this process trains."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def check_four_bit(device: str) -> None:
    """Raise FourBitUnavailable when bitsandbytes is missing or cannot quantise on `device` (a 64-value probe)."""
    try:
        import bitsandbytes.functional as bnb_functional
        import torch
    except ImportError as exc:
        raise FourBitUnavailable(_("--load-in-4bit needs bitsandbytes, which is not importable here ({error}); "
                                   "`pip install bitsandbytes` or train without --load-in-4bit").format(
                                       error=exc)) from None
    try:
        bnb_functional.quantize_4bit(torch.ones(64, device=device, dtype=torch.float32), quant_type=NF4)
    except Exception as exc:  # noqa: BLE001 - any backend failure means the same thing to the person
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FourBitUnavailable(_("--load-in-4bit: bitsandbytes cannot quantise on this device ({device}): "
                                   "{why}; train without --load-in-4bit").format(device=device,
                                                                                 why=why[:160])) from None


def quantization_config(precision: str, *, sharded: bool = False) -> Any:
    """NF4, double quantization, compute dtype from the run's precision. `sharded` (FSDP): the packed 4-bit
    weights stored in that dtype too, since FSDP2 shards floating-point parameters only; stored as bytes
    (bitsandbytes' default), accelerate leaves every 4-bit weight whole on every GPU. The stored bits are the
    same either way, so the adapter loads onto the base quantised with the default storage."""
    from transformers import BitsAndBytesConfig

    storage = {"bnb_4bit_quant_storage": torch_dtype(precision)} if sharded else {}
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=NF4, bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch_dtype(precision), **storage)


def four_bit_device_map(device: str) -> Any:
    """Where the quantised weights go: this process's GPU (its LOCAL_RANK under torchrun), else the CPU."""
    if device == "cuda":
        return {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return {"": device}


def load_base_model(model_path: str, precision: str, *, load_in_4bit: bool = False,
                    gradient_checkpointing: bool = True, attn_implementation: str | None = None,
                    sharded: bool = False) -> Any:
    """The causal LM to train: in the run's precision, or (QLoRA) its linear layers in 4-bit NF4, prepared with
    PEFT's `prepare_model_for_kbit_training`; `attn_implementation` None is transformers' default (SDPA);
    `sharded`: trained under FSDP (`quantization_config`)."""
    from transformers import AutoModelForCausalLM

    dtype = torch_dtype(precision)
    attention = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if not load_in_4bit:
        return AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, **attention)
    device = device_kind()
    check_four_bit(device)
    from peft import prepare_model_for_kbit_training

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, quantization_config=quantization_config(
        precision, sharded=sharded), device_map=four_bit_device_map(device), **attention)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)


def load_four_bit_for_inference(model_path: str, precision: str) -> Any:
    """The base as a 4-bit-trained adapter saw it (NF4, double quantization), for trying the adapter."""
    from transformers import AutoModelForCausalLM

    device = device_kind()
    check_four_bit(device)
    return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype(precision),
                                                quantization_config=quantization_config(precision),
                                                device_map=four_bit_device_map(device))
