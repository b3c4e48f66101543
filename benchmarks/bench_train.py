"""Runner overhead: `lora-tui train` on the demo model against a minimal hand-written Trainer + PEFT script.

Both do the same optimizer steps with the same model, batch, sequence length and data (the built-in sample,
tokenised with the demo chat template). The figure compared is the training-loop time after imports and
model loading: for lora-tui, `train_loop_seconds` from training_info.json; for the baseline, the time around
`trainer.train()`. The runner's own work (metrics lines, status updates, stop checks, checkpoint markers) must
cost at most 5% of the loop.

`--quick` (what `make test` runs): 2 steps, one repeat, on a demo model built without pre-training into a
temporary cache (seconds instead of the full build; the user's cache is not touched). Same code paths, no overhead
target; exits non-zero if either run fails.

    python benchmarks/bench_train.py [--quick] [--steps 30] [--repeats 3]
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
QUICK_STEPS = 2
"""Optimizer steps of each run with `--quick`."""

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

    proc = _run([sys.executable, "-c", BASELINE, str(model_dir), str(SAMPLE_DATA_PATH),
                 str(work / "baseline"), str(steps), str(BATCH), str(ACCUM), str(SEQ)])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("LOOP_SECONDS"))
    return float(line.split()[1])


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure exit with its stderr's tail, so a broken run fails the benchmark readably."""
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def run_lora_tui(steps: int, work: Path, index: int) -> float:
    """Seconds of lora-tui's training loop (train_loop_seconds in training_info.json)."""
    out = work / f"lora-tui-{index}"
    _run([sys.executable, "-m", "lora_tui", "train", "--model", "demo", "--max-steps", str(steps),
          "--batch-size", str(BATCH), "--gradient-accumulation-steps", str(ACCUM),
          "--max-seq-length", str(SEQ), "--save-steps", str(steps + 1), "--lora-r", "8",
          "--lora-alpha", "16", "--lora-dropout", "0.1", "--learning-rate", "1e-4",
          "--target-modules", "q_proj,k_proj,v_proj,o_proj", "--no-gradient-checkpointing",
          "--output", str(out)])
    info = json.loads((out / "training_info.json").read_text(encoding="utf-8"))
    return float(info["timings"]["train_loop_seconds"])


def _demo_model(quick_cache: Path | None) -> Path:
    """The demo model: the real one from the user's cache (built on first use), or, for `--quick`, one built
    without pre-training into `quick_cache`, which the training subprocess is pointed at through LORA_TUI_CACHE."""
    from lora_tui.train.demo import DEMO_DIR_NAME, build_demo_model, ensure_demo_model

    if quick_cache is None:
        return ensure_demo_model()
    target = quick_cache / DEMO_DIR_NAME
    target.mkdir(parents=True)
    from lora_tui.train.quiet import quiet_libraries

    quiet_libraries()
    build_demo_model(target, steps=0)
    os.environ["LORA_TUI_CACHE"] = str(quick_cache)
    return target


def main() -> int:
    """Alternate baseline and lora-tui runs; print the median loop times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps, once, on an untrained demo model")
    parser.add_argument("--steps", type=int, help=f"optimizer steps per run (default 30, {QUICK_STEPS} with --quick)")
    parser.add_argument("--repeats", type=int, help="runs of each (default 3, 1 with --quick)")
    args = parser.parse_args()
    steps = args.steps or (QUICK_STEPS if args.quick else 30)
    repeats = args.repeats or (1 if args.quick else 3)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base_t, ours_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = _demo_model(work / "cache" if args.quick else None)
        for i in range(repeats):
            started = time.time()
            base_t.append(run_baseline(model_dir, steps, work))
            ours_t.append(run_lora_tui(steps, work, i))
            print(f"repeat {i + 1}: baseline {base_t[-1]:.2f}s, lora-tui {ours_t[-1]:.2f}s "
                  f"({time.time() - started:.0f}s wall)", flush=True)
    b, o = statistics.median(base_t), statistics.median(ours_t)
    print(f"{steps} steps, batch {BATCH}, accumulation {ACCUM}, sequence <= {SEQ}, demo model, CPU")
    print(f"median training loop: baseline {b:.2f}s, lora-tui {o:.2f}s, ratio {o / b:.3f} "
          f"(overhead {100 * (o / b - 1):+.1f}%; target <= +5%)")
    if args.quick:
        print(f"(--quick: {steps} steps are too few to measure the overhead; this run checks that both work)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
