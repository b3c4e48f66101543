"""Fixtures for the adapter tests: a tiny local base model and adapters trained on it for a few steps.

The base is a 2-layer Llama (hidden 64) with a byte-level BPE tokenizer and a chat template, built in about a
second, so every adapter test runs on CPU in seconds. Adapters get a few AdamW steps on random tokens so that
lora_B is not zero and the adapter really changes the logits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
TEXTS = ["hello world, how are you today?", "the quick brown fox jumps over the lazy dog",
         "LoRA adapters add low rank updates", "こんにちは、元気ですか", "def add(a, b): return a + b"]


def build_tiny_base(path: Path, *, hidden: int = 64, layers: int = 2, vocab_extra: int = 0, seed: int = 0) -> Path:
    """Save a tiny Llama + tokenizer to `path` (config.json, model.safetensors, tokenizer files)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
    specials += [f"<extra_{i}>" for i in range(vocab_extra)]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS * 5, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=hidden // 4, max_position_embeddings=256, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def train_adapter(
    base_dir: Path, out: Path, *, r: int = 4, alpha: int = 8, targets: tuple[str, ...] = ("q_proj", "v_proj"),
    seed: int = 1, steps: int = 3, state: str | None = "finished", loss_log: bool = True,
) -> Path:
    """A real PEFT adapter for `base_dir` after a few optimizer steps, saved like a run directory."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lora_tui.core import runs

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets),
                                                  lora_dropout=0.0, task_type="CAUSAL_LM"))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-2)
    ids = torch.randint(7, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(seed))
    losses = []
    for _ in range(steps):
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out)
    if state is not None:
        runs.write_status(out, runs.RunStatus(state=state, started_at=time.time() - 60, ended_at=time.time(),
                                              step=steps, max_steps=steps))
    if loss_log:
        with open(out / runs.METRICS_FILE, "w", encoding="utf-8") as fh:
            for i, value in enumerate(losses, 1):
                fh.write(json.dumps({"step": i, "loss": value}) + "\n")
        (out / runs.INFO_FILE).write_text(json.dumps({"final_loss": losses[-1], "steps": steps}), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama base model directory (built once per session)."""
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base") / "base")


@pytest.fixture(scope="session")
def adapter_pair(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two trained adapters on the tiny base: attention-only r4 and all-linear-ish r8."""
    root = tmp_path_factory.mktemp("adapters")
    first = train_adapter(tiny_base, root / "chat", r=4, alpha=8, targets=("q_proj", "v_proj"), seed=1)
    second = train_adapter(tiny_base, root / "code", r=8, alpha=16,
                           targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                           seed=2)
    return first, second


def probe_ids(vocab: int) -> Any:
    """A fixed probe batch of token ids."""
    import torch

    return torch.randint(7, vocab, (2, 10), generator=torch.Generator().manual_seed(123))
