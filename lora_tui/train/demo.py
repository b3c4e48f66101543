"""The built-in demo model: a tiny Llama-style LM with a locally trained tokenizer, built once into the cache.

`ensure_demo_model()` returns the directory holding config.json, model.safetensors and the tokenizer files
(with a chat template that marks assistant turns with `{% generation %}`), building it the first time:

1. a byte-level BPE tokenizer (vocabulary 4096; <pad>=0, <s>=1, </s>=2, chat markers) trained on the
   pre-training text only (lora_tui.train.corpus), so every token it has is one the base has seen;
2. a Llama model from `lora_tui.core.models.modules.demo_config()` (grouped-query attention: 8 query heads, 2 KV heads);
3. a short deterministic pre-training (PRETRAIN_STEPS AdamW steps, label smoothing 0.1) on generated paragraphs
   and generic chats rendered with the demo chat template. The built-in sample chats, their persona and their
   sign-off are never part of it, so LoRA fine-tuning on the sample has something real to learn.

The build happens in a temporary directory that is renamed into place, under a file lock, so two processes
racing to build it end with one complete model and neither sees a partial one. A training process in a
torch.distributed process group builds it in a child process outside the group (`python -m lora_tui.train.demo`):
transformers' save_pretrained writes only on rank 0 of a group, and the demo model is a cache of this machine that
the first process of any rank to need it builds. A build that did not write its weights is never moved into place.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lora_tui.core.demo_progress import DEMO_DIR_NAME, PROGRESS_FILE, write_progress
from lora_tui.core.models.modules import demo_config

BUILD_MARKER = "lora_tui_demo.json"
"""Written last into the demo model directory: build settings and the pre-training loss."""
BUILD_VERSION = 3
"""Bumped whenever the recipe changes, so an old cached build is rebuilt."""
PRETRAIN_STEPS = 100
"""AdamW steps of pre-training on generated text."""
PRETRAIN_BATCH = 8
"""Sequences per pre-training step."""
PRETRAIN_SEQ = 128
"""Tokens per pre-training sequence."""
PRETRAIN_PARAGRAPHS = 1500
"""Generated paragraphs in the pre-training text."""
PRETRAIN_CHATS = 6000
"""Generated chats (rendered with the chat template) in the pre-training text."""
PRETRAIN_LABEL_SMOOTHING = 0.1
"""Label smoothing of the pre-training loss: keeps the tiny base from being sure that unseen words never come."""
PRETRAIN_LR = 3e-3
"""Peak learning rate of the pre-training (cosine decay to 10%)."""
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", BUILD_MARKER)
"""What a build must have written before it is moved into place."""
GROUP_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
             "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT")
"""The variables torchrun gives its workers (and TORCHELASTIC_*): left out of the child that builds the model."""

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
"""Special tokens, in id order: pad=0, bos=1, eos=2, then the chat role markers."""

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\n' }}{%- endif -%}"
)
"""Chat template of the demo tokenizer; `{% generation %}` marks the assistant text for assistant-only loss."""

def demo_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the demo model lives (whether or not it has been built)."""
    from lora_tui.core.paths import cache_dir as default_cache

    return (cache_dir or default_cache()) / DEMO_DIR_NAME


def is_built(path: Path) -> bool:
    """True when `path` holds a complete demo model of the current recipe."""
    try:
        info = json.loads((path / BUILD_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("version") == BUILD_VERSION and (path / "model.safetensors").is_file()


def ensure_demo_model(cache_dir: Path | None = None) -> Path:
    """The demo model directory, built on first use (atomic and safe when several processes race)."""
    target = demo_model_dir(cache_dir)
    if is_built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{DEMO_DIR_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(target):
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{DEMO_DIR_NAME}.", dir=target.parent))
        try:
            _build(tmp, PRETRAIN_STEPS)
            if target.exists():  # an older recipe's build: move aside, then delete
                old = target.with_name(f".{DEMO_DIR_NAME}.old.{time.time_ns()}")
                target.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _in_process_group() -> bool:
    """Whether this process is in a torch.distributed process group (a training process under torchrun)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


def _build(out_dir: Path, steps: int) -> None:
    """`build_demo_model` here, or in a child process outside this one's process group (see the module docstring);
    RuntimeError when the build did not write every file of a complete model."""
    if _in_process_group():
        env = {k: v for k, v in os.environ.items() if k not in GROUP_ENV and not k.startswith("TORCHELASTIC_")}
        done = subprocess.run([sys.executable, "-m", "lora_tui.train.demo", str(out_dir), "--steps", str(steps)],
                              env=env, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"building the demo model failed (its process exited with status {done.returncode}; "
                               "its output is above)")
    else:
        build_demo_model(out_dir, steps=steps)
    missing = [name for name in REQUIRED_FILES if not (out_dir / name).is_file()]
    if missing:
        raise RuntimeError(f"building the demo model wrote no {', '.join(missing)}; nothing was kept, the next run "
                           "builds it again")


def _tokenizer_texts() -> list[str]:
    """The tokenizer's training text: the pre-training corpus only, so every token it has is seen in training."""
    from lora_tui.train import corpus

    texts = list(corpus.paragraphs(PRETRAIN_PARAGRAPHS, seed=10))
    texts += [m["content"] for chat in corpus.dialogues(PRETRAIN_CHATS, seed=11) for m in chat]
    return texts


def build_tokenizer(vocab_size: int) -> Any:
    """Train the byte-level BPE tokenizer and wrap it as a PreTrainedTokenizerFast with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_tokenizer_texts(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[3:], model_max_length=1024,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def _pretrain_token_stream(tokenizer: Any) -> list[int]:
    from lora_tui.train import corpus

    texts = [tokenizer.bos_token + p + tokenizer.eos_token for p in corpus.paragraphs(PRETRAIN_PARAGRAPHS, seed=10)]
    texts += [tokenizer.apply_chat_template(c, tokenize=False) for c in corpus.dialogues(PRETRAIN_CHATS, seed=11)]
    random.Random(12).shuffle(texts)
    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
    return ids


PROGRESS_EVERY_S = 0.5
"""Most seconds between two writes of the build's progress file (the first and the last step are always written)."""


def pretrain(model: Any, tokenizer: Any, *, steps: int = PRETRAIN_STEPS, progress_dir: Path | None = None
             ) -> list[float]:
    """Deterministic short pre-training on generated text; returns the loss of every step.

    With `progress_dir` (the build directory) the step, the total and the seconds so far are kept in its
    progress file (`lora_tui.core.demo_progress`), which the monitor and `lora-tui train` show."""
    import torch

    torch.manual_seed(0)
    data = torch.tensor(_pretrain_token_stream(tokenizer), dtype=torch.long)
    n_seq = len(data) // PRETRAIN_SEQ
    data = data[: n_seq * PRETRAIN_SEQ].view(n_seq, PRETRAIN_SEQ)
    optim = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + __import__("math").cos(
            3.14159265 * s / steps)))
    )
    gen = torch.Generator().manual_seed(0)
    model.train()
    losses: list[float] = []
    started = last_written = time.monotonic()
    if progress_dir is not None:
        write_progress(progress_dir, stage="pretraining", step=0, total=steps)
    for step in range(1, steps + 1):
        batch = data[torch.randint(0, n_seq, (PRETRAIN_BATCH,), generator=gen)]
        logits = model(input_ids=batch).logits[:, :-1].reshape(-1, model.config.vocab_size)
        loss = torch.nn.functional.cross_entropy(logits, batch[:, 1:].reshape(-1),
                                                 label_smoothing=PRETRAIN_LABEL_SMOOTHING)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        now = time.monotonic()
        if progress_dir is not None and (now - last_written >= PROGRESS_EVERY_S or step == steps):
            write_progress(progress_dir, stage="pretraining", step=step, total=steps, elapsed=now - started)
            last_written = now
    model.eval()
    return losses


def build_demo_model(out_dir: Path, *, steps: int = PRETRAIN_STEPS) -> dict[str, Any]:
    """Build tokenizer + model + pre-training into `out_dir`; returns the build info (also written there)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    started = time.time()
    write_progress(out_dir, stage="tokenizer", total=steps)
    cfg_dict = demo_config()
    tokenizer = build_tokenizer(int(cfg_dict["vocab_size"]))
    torch.manual_seed(0)
    config = LlamaConfig(**{k: v for k, v in cfg_dict.items() if k not in ("architectures", "model_type")})
    model = LlamaForCausalLM(config)
    losses = pretrain(model, tokenizer, steps=steps, progress_dir=out_dir) if steps > 0 else []
    write_progress(out_dir, stage="saving", step=steps, total=steps)
    model.generation_config.pad_token_id = 0
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    info = {
        "version": BUILD_VERSION,
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretrain_steps": steps,
        "pretrain_loss_first": round(losses[0], 4) if losses else None,
        "pretrain_loss_last": round(sum(losses[-10:]) / len(losses[-10:]), 4) if losses else None,
        "build_seconds": round(time.time() - started, 1),
    }
    (out_dir / BUILD_MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (out_dir / PROGRESS_FILE).unlink(missing_ok=True)  # the build is complete: nothing of it stays in the model
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lora_tui.train.demo OUT_DIR [--steps N]`: build the demo model into OUT_DIR (`_build`'s child)."""
    parser = argparse.ArgumentParser(prog="python -m lora_tui.train.demo", description=main.__doc__)
    parser.add_argument("out_dir", type=Path, help="the (temporary) directory to build into")
    parser.add_argument("--steps", type=int, default=PRETRAIN_STEPS, help="pre-training steps")
    args = parser.parse_args(argv)
    build_demo_model(args.out_dir, steps=args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
