"""Useful tokens per second on mixed-length data: random batches (what lora-tui did before) against length-grouped
batches (its default now), and whether grouping changes what the run learns.

The data set is made here: chat examples whose rendered lengths are spread log-uniformly from 20 to 1,000 tokens
of the demo model's tokenizer (many short examples, a few long ones, as real instruction data tends to be). Each
run is `lora-tui train` on the demo model for one epoch at batch 8 (sequence <= 1024, no gradient checkpointing,
a 10% evaluation split evaluated once at the end), and reads from training_info.json:

- useful tokens/s: non-padding tokens / training-loop seconds (`tokens_per_second`), and the padding share;
- the final eval loss, to compare the two samplers: the difference of their means against the spread between
  seeds of the same sampler (grouping changes which examples share a step, so a difference within the seed
  spread is noise), and the difference seed by seed (a seed fixes the split and the initialisation, so this
  shows a small systematic change the spread would hide).

Each sampler runs once per seed (`--seeds`, alternated); the ratio is of the medians. Padding-free and packed
batches need FlashAttention on a GPU, so they are not measured here.

`--quick` (what `make test` runs): 32 examples of at most 200 tokens, 2 steps per sampler, one seed, no
evaluation: the same code paths, no target.

    python benchmarks/bench_throughput.py [--quick] [--examples 240] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BATCH, SHORTEST, LONGEST = 8, 20, 1000


def mixed_lengths_data(path: Path, model_dir: Path, examples: int, longest: int, seed: int = 0) -> list[int]:
    """Write `examples` chat examples to `path` (JSONL) with rendered lengths log-uniform in [SHORTEST, longest]
    tokens of the demo tokenizer (in `model_dir`); returns the lengths."""
    from transformers import AutoTokenizer

    from lora_tui.core.paths import SAMPLE_DATA_PATH

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    words = " ".join(json.loads(line)["messages"][1]["content"]
                     for line in SAMPLE_DATA_PATH.read_text(encoding="utf-8").splitlines() if line.strip()).split()
    rng = random.Random(seed)
    lengths: list[int] = []
    with path.open("w", encoding="utf-8") as out:
        for _ in range(examples):
            target = round(math.exp(rng.uniform(math.log(SHORTEST), math.log(longest))))
            start = rng.randrange(len(words))
            reply = [words[(start + i) % len(words)] for i in range(target)]
            messages = _fit(tok, reply, target)
            lengths.append(len(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]))
            out.write(json.dumps({"messages": messages}) + "\n")
    return lengths


def _fit(tok: Any, reply: list[str], target: int) -> list[dict[str, str]]:
    """The shortest prefix of `reply` whose rendered chat reaches `target` tokens (bisection on the word count)."""
    def chat(n: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": "Tell me more."},
                {"role": "assistant", "content": " ".join(reply[:max(1, n)])}]

    def size(n: int) -> int:
        return len(tok.apply_chat_template(chat(n), tokenize=True, return_dict=True)["input_ids"])

    low, high = 1, len(reply)
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if size(mid) < target else (low, mid)
    return chat(low)


def run(data: Path, work: Path, batching: str, seed: int, quick: bool) -> dict[str, Any]:
    """One `lora-tui train` run (`quick`: 2 steps, no evaluation); its training_info.json."""
    out = work / f"{batching}-{seed}"
    argv = [sys.executable, "-m", "lora_tui", "train", "--model", "demo", "--data", str(data),
            "--batch-size", str(BATCH), "--gradient-accumulation-steps", "1", "--max-seq-length", "1024",
            "--epochs", "1", "--eval-split", "0" if quick else "0.1", "--save-steps", "100000",
            "--learning-rate", "2e-4", "--no-gradient-checkpointing", "--batching", batching, "--seed", str(seed),
            "--output", str(out)] + (["--max-steps", "2"] if quick else [])
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"lora-tui train --batching {batching} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
                         f"\n{proc.stdout[-3000:]}")
    info: dict[str, Any] = json.loads((out / "training_info.json").read_text(encoding="utf-8"))
    return info


def main() -> int:
    """Alternate the two samplers over the seeds; print the medians, the ratio and the eval-loss comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 short examples, 2 steps, one seed")
    parser.add_argument("--examples", type=int, help="examples in the made data set (default 240)")
    parser.add_argument("--seeds", type=int, help="runs of each sampler, seeds 1..N (default 3)")
    args = parser.parse_args()
    examples = args.examples or (32 if args.quick else 240)
    seeds = args.seeds or (1 if args.quick else 3)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, list[dict[str, Any]]] = {"random": [], "grouped": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "mixed.jsonl"
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_train import _demo_model

        model_dir = _demo_model(work / "cache" if args.quick else None)
        lengths = mixed_lengths_data(data, model_dir, examples, 200 if args.quick else LONGEST)
        print(f"{examples} examples, {min(lengths)}-{max(lengths)} tokens (median {statistics.median(lengths):.0f}, "
              f"mean {statistics.mean(lengths):.0f}); batch {BATCH}, demo model, CPU", flush=True)
        for seed in range(1, seeds + 1):
            for batching in results:
                started = time.time()
                info = run(data, work, batching, seed, args.quick)
                results[batching].append(info)
                loop = info["timings"]["train_loop_seconds"]
                print(f"seed {seed} {batching}: {info['tokens_per_second']:.0f} useful tok/s, padding "
                      f"{info['padding_share']:.0%}, {info['steps']} steps in {loop:.1f}s,"
                      f" eval loss {info['final_eval_loss'] or float('nan'):.4f} ({time.time() - started:.0f}s wall)",
                      flush=True)
    speed = {k: statistics.median(r["tokens_per_second"] for r in v) for k, v in results.items()}
    pad = {k: statistics.median(r["padding_share"] for r in v) for k, v in results.items()}
    print(f"useful tokens/s, median of {seeds}: random {speed['random']:.0f} (padding {pad['random']:.0%}), "
          f"grouped {speed['grouped']:.0f} (padding {pad['grouped']:.0%}): "
          f"ratio {speed['grouped'] / speed['random']:.2f} (target >= 1.3); load average {os.getloadavg()[0]:.2f}")
    losses = {k: [r["final_eval_loss"] for r in v] for k, v in results.items()}
    if seeds > 1:
        spread = max(max(v) - min(v) for v in losses.values())
        diff = statistics.mean(losses["grouped"]) - statistics.mean(losses["random"])
        paired = [g - r for g, r in zip(losses["grouped"], losses["random"], strict=True)]
        print(f"final eval loss: random {', '.join(f'{x:.4f}' for x in losses['random'])}; grouped "
              f"{', '.join(f'{x:.4f}' for x in losses['grouped'])}; mean difference {diff:+.4f} against a seed "
              f"spread of {spread:.4f}: {'within' if abs(diff) <= spread else 'BEYOND'} the noise; paired by seed "
              f"(same split and initialisation): {', '.join(f'{d:+.4f}' for d in paired)}")
    if args.quick:
        print("(--quick: 2 steps on short examples measure nothing; this run checks that both samplers work)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
