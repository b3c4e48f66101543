"""Runner overhead: `lora-tui train` on the demo model against a minimal hand-written Trainer + PEFT script.

Both do the same optimizer steps with the same model, batch, sequence length and data (the built-in sample,
tokenised with the demo chat template). The figure compared is the training-loop time after imports and
model loading: for lora-tui, `train_loop_seconds` from training_info.json; for the baseline, the time around
`trainer.train()`. The runner's own work (metrics lines, status updates, stop checks, checkpoint markers) must
cost at most 5% of the loop.

    python benchmarks/bench_train.py [--steps 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH, ACCUM, SEQ = 2, 1, 128

BASELINE = r'''
import sys, time, json
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments
from transformers import DataCollatorForLanguageModeling
model_dir, data, out, steps, batch, accum, seq = sys.argv[1:8]
tok = AutoTokenizer.from_pretrained(model_dir)
rows = [json.loads(l) for l in open(data, encoding="utf-8") if l.strip()]
texts = [tok.apply_chat_template(r["messages"], tokenize=False) for r in rows]
ds = Dataset.from_dict({"text": texts}).map(lambda b: tok(b["text"], truncation=True, max_length=int(seq),
                                             add_special_tokens=False), batched=True, remove_columns=["text"])
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1,
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir=out, max_steps=int(steps), per_device_train_batch_size=int(batch),
                         gradient_accumulation_steps=int(accum), learning_rate=1e-4, logging_steps=1,
                         save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=42)
trainer = Trainer(model=model, args=args, train_dataset=ds,
                  data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
t0 = time.perf_counter()
trainer.train()
print("LOOP_SECONDS", time.perf_counter() - t0)
'''


def run_baseline(model_dir: Path, steps: int, work: Path) -> float:
    """Seconds of the baseline's trainer.train()."""
    from lora_tui.core.paths import SAMPLE_DATA_PATH

    proc = subprocess.run([sys.executable, "-c", BASELINE, str(model_dir), str(SAMPLE_DATA_PATH),
                           str(work / "baseline"), str(steps), str(BATCH), str(ACCUM), str(SEQ)],
                          capture_output=True, text=True, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("LOOP_SECONDS"))
    return float(line.split()[1])


def run_lora_tui(steps: int, work: Path, index: int) -> float:
    """Seconds of lora-tui's training loop (train_loop_seconds in training_info.json)."""
    out = work / f"lora-tui-{index}"
    subprocess.run([sys.executable, "-m", "lora_tui", "train", "--model", "demo", "--max-steps", str(steps),
                    "--batch-size", str(BATCH), "--gradient-accumulation-steps", str(ACCUM),
                    "--max-seq-length", str(SEQ), "--save-steps", str(steps + 1), "--lora-r", "8",
                    "--lora-alpha", "16", "--lora-dropout", "0.1", "--learning-rate", "1e-4",
                    "--target-modules", "q_proj,k_proj,v_proj,o_proj", "--no-gradient-checkpointing",
                    "--output", str(out)], check=True, capture_output=True)
    info = json.loads((out / "training_info.json").read_text(encoding="utf-8"))
    return float(info["timings"]["train_loop_seconds"])


def main() -> int:
    """Alternate baseline and lora-tui runs; print the median loop times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lora_tui.train.demo import ensure_demo_model

    model_dir = ensure_demo_model()
    base_t, ours_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(args.repeats):
            started = time.time()
            base_t.append(run_baseline(model_dir, args.steps, work))
            ours_t.append(run_lora_tui(args.steps, work, i))
            print(f"repeat {i + 1}: baseline {base_t[-1]:.2f}s, lora-tui {ours_t[-1]:.2f}s "
                  f"({time.time() - started:.0f}s wall)", flush=True)
    b, o = statistics.median(base_t), statistics.median(ours_t)
    print(f"{args.steps} steps, batch {BATCH}, accumulation {ACCUM}, sequence <= {SEQ}, demo model, CPU")
    print(f"median training loop: baseline {b:.2f}s, lora-tui {o:.2f}s, ratio {o / b:.3f} "
          f"(overhead {100 * (o / b - 1):+.1f}%; target <= +5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
