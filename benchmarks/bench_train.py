"""Runner overhead, TRL's per-step extras and time to first step: `lora-tui train` against hand-written scripts.

Three hand-written scripts train the demo model with the same settings as `lora-tui train` (batch, sequence
length, LoRA r/alpha/dropout/targets, learning rate, seed, random batches; the built-in sample tokenised with
the model's chat template):

- `sft`: TRL's SFTTrainer, the trainer lora-tui uses: the reference for lora-tui's own per-step cost (in fp32,
  as lora-tui computes on the CPU; SFTConfig's own default, bf16, made a CPU step about 1.6x slower);
- `plain`: transformers' Trainer with its plain loss (full logits, cross-entropy): what TRL's trainer costs;
- `lean`: SFTTrainer with its fused LM head asked for the log-probabilities only (no entropy, no top-1 match):
  what the two metrics it logs every step (`entropy`, `mean_token_accuracy`) cost.

Figures over `--repeats` runs of each (alternated, so a busy spell hits all of them): the median run, the best
run, and for the time per step the steady figure: each step's fastest time over the repeats, averaged over the
steps. Every run trains the same batches (same seed, sampler and data; the token counts per step are compared and
the result printed), so step i costs the same in every run and its fastest time is its cost when no other process
got in the way; on a shared 2-core machine it is the figure that says what the code costs.

- per-step overhead: lora-tui's time per step / the `sft` script's (target <= 1.03). A run's step times are
  the gaps between consecutive step ends (lora-tui's metrics lines, a callback in the scripts), so the
  first step's warm-up and the work before and after the loop (lora-tui's final checkpoint) are left out;
- TRL's cost: `sft` per step / `plain` per step, and the metrics' share: (`sft` - `lean`) / `sft`;
- time to first step: from starting the command (`lora-tui train`, which also resolves and checks the plan and
  starts the training process) to the end of the first optimizer step, against the `sft` script's (target <= 1.2);
- the fused head's metrics on a real model's LM-head shape (hidden 2048, vocabulary 128,256), measured on the
  kernel alone, since a real model's whole step does not fit a CPU benchmark.

`--quick` (what `make test` runs): 2 steps, one run of lora-tui and of the `sft` script, on a demo model built
without pre-training into a temporary cache (the user's cache is not touched), and the kernel on the demo's head
shape; no targets; exits non-zero if a run fails.

    python benchmarks/bench_train.py [--quick] [--steps 30] [--repeats 5]
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH, ACCUM, SEQ = 2, 1, 128
QUICK_STEPS = 2
"""Optimizer steps of each run with `--quick`."""

HAND = r'''
import sys, time, json
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments
kind, model_dir, data, out, steps, batch, accum, seq = sys.argv[1:9]
class First(TrainerCallback):
    ends, tokens = [], []
    def on_step_end(self, args, state, control, **kw):
        self.ends.append(time.time())
        if state.global_step == 1:
            print("FIRST_STEP_AT", time.time(), flush=True)
    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "num_tokens" in logs:
            self.tokens.append(int(logs["num_tokens"]))
tok = AutoTokenizer.from_pretrained(model_dir)
rows = [json.loads(l) for l in open(data, encoding="utf-8") if l.strip()]
ids = [tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"][:int(seq)] for r in rows]
ds = Dataset.from_dict({"input_ids": ids})
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                  task_type="CAUSAL_LM")
common = dict(output_dir=out, max_steps=int(steps), per_device_train_batch_size=int(batch),
              gradient_accumulation_steps=int(accum), learning_rate=1e-4, logging_steps=1, save_strategy="no",
              report_to="none", disable_tqdm=True, use_cpu=True, seed=42, data_seed=42)
if kind == "plain":
    from transformers import DataCollatorForLanguageModeling
    trainer = Trainer(model=get_peft_model(model, lora), args=TrainingArguments(**common), train_dataset=ds,
                      data_collator=DataCollatorForLanguageModeling(tok, mlm=False), callbacks=[First()])
else:
    if kind == "lean":  # the fused head computes the log-probabilities only; entropy and top-1 become zeros
        import trl.trainer.utils as U
        real = U._ChunkedLogProbFunction.apply
        def lean(*a):
            out = list(real(*a[:-1], ("log_probs",)))
            out[1] = out[4] = torch.zeros_like(out[0])
            return tuple(out)
        U._ChunkedLogProbFunction.apply = lean
    from trl import SFTConfig, SFTTrainer
    # bf16=False: SFTConfig defaults to bf16, lora-tui computes in fp32 on the CPU (core.precision)
    trainer = SFTTrainer(model=model, args=SFTConfig(max_length=int(seq), gradient_checkpointing=False, bf16=False,
                                                     **common),
                         train_dataset=ds, processing_class=tok, peft_config=lora, callbacks=[First()])
t0 = time.perf_counter()
trainer.train()
print("LOOP_SECONDS", time.perf_counter() - t0)
print("STEP_ENDS", *First.ends)
print("TOKENS", *First.tokens)
'''

KERNEL = r'''
import sys, time, statistics, torch
from trl.trainer.utils import _ChunkedLogProbFunction, _CHUNKED_LOGPROB_CHUNK_SIZE
hidden, vocab, tokens, repeats = (int(x) for x in sys.argv[1:5])
torch.manual_seed(0)
h = torch.randn(tokens, hidden, requires_grad=True); w = torch.randn(vocab, hidden) * 0.02  # frozen, as in LoRA
labels = torch.randint(0, vocab, (tokens,))
def once(outputs):
    t = time.perf_counter()
    out = _ChunkedLogProbFunction.apply(h, w, None, labels, 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, outputs)
    (-out[0].sum()).backward()
    return time.perf_counter() - t
full, lean = ("log_probs", "entropy", "is_top1"), ("log_probs",)
once(full); once(lean)
a, b = [], []
for _ in range(repeats):
    a.append(once(full)); b.append(once(lean))
print("KERNEL", min(a), min(b))  # alternated; the fastest of each is its cost undisturbed
'''


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure exit with its stderr's tail, so a broken run fails the benchmark readably."""
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def _value(proc: subprocess.CompletedProcess[str], key: str) -> float:
    return float(next(x for x in proc.stdout.splitlines() if x.startswith(key)).split()[1])


def gaps(ends: list[float]) -> list[float]:
    """The time of each step after the first: the gap between its end and the previous step's (the first step,
    which warms up, and the loop's start and end work, such as the final checkpoint, left out)."""
    return [b - a for a, b in zip(ends, ends[1:], strict=False)]


def step_time(step_gaps: list[float]) -> float:
    """A run's time per step: the median of its step gaps (a busy spell of a few steps does not count)."""
    return statistics.median(step_gaps) if step_gaps else float("nan")


def steady_step(runs: list[list[float]]) -> float:
    """The time per step when no busy spell hits: each step's fastest time over the repeats, averaged over the
    steps. Every repeat of every script trains the same batches (same seed, sampler and data; `main` checks the
    token counts), so step i does the same work in every run and its fastest time is its cost undisturbed."""
    n = min((len(r) for r in runs), default=0)
    return sum(min(r[i] for r in runs) for i in range(n)) / n if n else float("nan")


@dataclass
class Run:
    """One run of a script: its step gaps, seconds from its start to the end of step 1, tokens seen per step."""

    gaps: list[float]
    first: float
    tokens: list[int]


def _floats(proc: subprocess.CompletedProcess[str], key: str) -> list[float]:
    return [float(x) for x in next(x for x in proc.stdout.splitlines() if x.startswith(key)).split()[1:]]


def run_hand(kind: str, model_dir: Path, steps: int, work: Path) -> Run:
    """Run a hand-written script (`kind`: sft, plain or lean)."""
    from lora_tui.core.paths import SAMPLE_DATA_PATH

    started = time.time()
    proc = _run([sys.executable, "-c", HAND, kind, str(model_dir), str(SAMPLE_DATA_PATH), str(work / kind),
                 str(steps), str(BATCH), str(ACCUM), str(SEQ)])
    return Run(gaps(_floats(proc, "STEP_ENDS")), _value(proc, "FIRST_STEP_AT") - started,
               [int(t) for t in _floats(proc, "TOKENS")])


def run_lora_tui(steps: int, work: Path, index: int) -> Run:
    """Run `lora-tui train` with the scripts' settings; its step ends are metrics.jsonl's times."""
    out = work / f"lora-tui-{index}"
    started = time.time()
    _run([sys.executable, "-m", "lora_tui", "train", "--model", "demo", "--max-steps", str(steps),
          "--batch-size", str(BATCH), "--gradient-accumulation-steps", str(ACCUM),
          "--max-seq-length", str(SEQ), "--save-steps", str(steps + 1), "--lora-r", "8",
          "--lora-alpha", "16", "--lora-dropout", "0.1", "--learning-rate", "1e-4", "--eval-split", "0",
          "--target-modules", "q_proj,k_proj,v_proj,o_proj", "--no-gradient-checkpointing",
          "--batching", "random", "--output", str(out)])
    timings = json.loads((out / "training_info.json").read_text(encoding="utf-8"))["timings"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    steps_logged = [r for r in records if "loss" in r]
    return Run(gaps([float(r["elapsed"]) for r in steps_logged]), float(timings["first_step_at"]) - started,
               [int(r["tokens_seen"]) for r in steps_logged])


def kernel_cost(hidden: int, vocab: int, tokens: int, repeats: int) -> tuple[float, float]:
    """(seconds with entropy and top-1, seconds with log-probabilities only) of the fused head, forward and
    backward with the LM head's weight frozen (as LoRA leaves it), the fastest of `repeats` alternated runs."""
    proc = _run([sys.executable, "-c", KERNEL, str(hidden), str(vocab), str(tokens), str(repeats)])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("KERNEL")).split()
    return float(line[1]), float(line[2])


def runner_work(steps: int = 2000) -> float:
    """Seconds per step of lora-tui's own per-step work, timed in this process: the token tally of a demo-sized
    batch (2 x 128), the run callback's step end and metrics line (status.json at most once a second), and the
    memory probe's step end. Unlike a whole run's step, it is CPU-bound work of microseconds, which other
    processes on the machine slow far less than they slow a training step."""
    import torch
    import transformers

    from lora_tui.train.callbacks import RunCallback, StopFlag
    from lora_tui.train.info import MemoryProbe

    batch = {"input_ids": torch.ones(2, 128, dtype=torch.long), "attention_mask": torch.ones(2, 128, dtype=torch.long),
             "labels": torch.ones(2, 128, dtype=torch.long)}
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as null:
        callback = RunCallback(Path(tmp), StopFlag(), is_main=True, world_size=1, effective_batch=2)
        probe = MemoryProbe(Path(tmp), is_main=True)
        probe.start()
        memory = probe.callback()
        control, stdout = transformers.TrainerControl(), sys.stdout
        sys.stdout = null  # the metrics line RunCallback prints per step
        try:
            started = time.perf_counter()
            for step in range(1, steps + 1):
                state = transformers.TrainerState(global_step=step, max_steps=steps, epoch=step / steps)
                callback.tally.add(batch)
                callback.on_step_end(None, state, control)  # type: ignore[arg-type]
                memory.on_step_end(None, state, control)
                callback.on_log(None, state, control, logs={"loss": 2.0, "learning_rate": 1e-4,  # type: ignore[arg-type]
                                                              "grad_norm": 1.0, "num_tokens": 256.0 * step})
            elapsed = time.perf_counter() - started
        finally:
            sys.stdout = stdout
            callback.close()
    return elapsed / steps


def status_write(runs_dir: Path, repeats: int = 50) -> float:
    """Seconds one status.json update takes (read, change, write a temporary file, fsync, rename), the fastest of
    `repeats`, in the runs directory (or where it would be made, when there is none yet): the run callback does
    it at most once a second, so a run's steps pay it once a second of training, which `runner_work`'s
    microsecond steps leave out."""
    from lora_tui.core import runs

    with tempfile.TemporaryDirectory(dir=runs_dir if runs_dir.is_dir() else runs_dir.parent) as tmp:
        times = []
        for step in range(repeats):
            started = time.perf_counter()
            runs.update_status(tmp, state="running", step=step, max_steps=repeats)
            times.append(time.perf_counter() - started)
    return min(times)


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


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 0 else "n/a"


def report(done: dict[str, list[Run]], steps: int, repeats: int, quick: bool) -> None:
    """Print the per-step and first-step figures and their ratios: median of the runs, the best run, and (per
    step) the steady figure, each step's fastest time over the repeats."""
    same = {tuple(r.tokens) for runs in done.values() for r in runs if r.tokens}  # plain Trainer logs none
    print(f"{steps} steps, batch {BATCH}, accumulation {ACCUM}, sequence <= {SEQ}, demo model, CPU, "
          f"{repeats} repeats; load average {os.getloadavg()[0]:.2f}; every run trained the same batches: "
          f"{'yes' if len(same) == 1 else 'NO (token counts differ: the steady figure does not hold)'}")
    per_step = {"median": lambda runs: statistics.median(step_time(r.gaps) for r in runs),
                "best": lambda runs: min(step_time(r.gaps) for r in runs),
                "steady": lambda runs: steady_step([r.gaps for r in runs])}
    for label, pick in per_step.items():
        m = {k: pick(v) for k, v in done.items()}
        print(f"[{label} of {repeats}] per-step overhead: lora-tui {1000 * m['lora-tui']:.1f} ms / hand-written "
              f"SFTTrainer {1000 * m['sft']:.1f} ms = {_ratio(m['lora-tui'], m['sft'])} (target <= 1.03)")
        if not quick:
            print(f"[{label} of {repeats}] TRL's trainer: SFTTrainer {1000 * m['sft']:.1f} ms / plain Trainer "
                  f"{1000 * m['plain']:.1f} ms per step = {_ratio(m['sft'], m['plain'])}; its entropy and token "
                  f"accuracy: {100 * (m['sft'] - m['lean']) / m['sft']:+.1f}% of its step (without them "
                  f"{1000 * m['lean']:.1f} ms)")
    for label, first in (("median", statistics.median), ("best", min)):
        f = {k: first([r.first for r in done[k]]) for k in ("lora-tui", "sft")}
        print(f"[{label} of {repeats}] time to first step: lora-tui train {f['lora-tui']:.2f}s / hand-written "
              f"SFTTrainer script {f['sft']:.2f}s = {_ratio(f['lora-tui'], f['sft'])} (target <= 1.2)")


def main() -> int:
    """Alternate the four runs; print the medians and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps, once, on an untrained demo model")
    parser.add_argument("--steps", type=int, help=f"optimizer steps per run (default 30, {QUICK_STEPS} with --quick)")
    parser.add_argument("--repeats", type=int, help="runs of each (default 5, 1 with --quick)")
    args = parser.parse_args()
    steps = args.steps or (QUICK_STEPS if args.quick else 30)
    repeats = args.repeats or (1 if args.quick else 5)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kinds = ("sft", "lora-tui") if args.quick else ("sft", "lora-tui", "plain", "lean")
    done: dict[str, list[Run]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = _demo_model(work / "cache" if args.quick else None)
        for i in range(repeats):
            started = time.time()
            for kind in kinds:
                done[kind].append(run_lora_tui(steps, work, i) if kind == "lora-tui"
                                  else run_hand(kind, model_dir, steps, work))
            print(f"repeat {i + 1}: per step " + ", ".join(f"{k} {1000 * step_time(v[-1].gaps):.0f}ms"
                                                          for k, v in done.items())
                  + f"; first step lora-tui {done['lora-tui'][-1].first:.2f}s, sft {done['sft'][-1].first:.2f}s "
                  f"({time.time() - started:.0f}s wall)", flush=True)
    report(done, steps, repeats, args.quick)
    work_s = runner_work(200 if args.quick else 2000)
    best_sft = min(step_time(r.gaps) for r in done["sft"])
    from lora_tui.core.paths import output_root

    status_s = status_write(output_root())
    per_step = work_s + status_s * best_sft  # status.json once a second: a step of t seconds pays t x its cost
    print(f"lora-tui's own per-step work (tally, callbacks, metrics line), timed alone: {1e6 * work_s:.0f} us, "
          f"plus a status.json update ({1000 * status_s:.1f} ms in {output_root()}) once a second: "
          f"{100 * per_step / best_sft:.2f}% of the best hand-written SFTTrainer step ({1000 * best_sft:.1f} ms; "
          "target <= 3%)")
    shapes = [(256, 4096, 512, "the demo's head (hidden 256, vocabulary 4,096), 512 tokens")]
    if not args.quick:
        shapes.append((2048, 128_256, 256, "a 1B model's head (hidden 2048, vocabulary 128,256), 256 tokens"))
    for hidden, vocab, tokens, label in shapes:
        full, lean = kernel_cost(hidden, vocab, tokens, 1 if args.quick else 5)
        print(f"fused LM head on {label}: {full * 1000:.0f} ms with the metrics, {lean * 1000:.0f} ms without "
              f"({100 * (full - lean) / full:+.1f}%)")
    if args.quick:
        print(f"(--quick: {steps} steps are too few to measure the overhead; this run checks that each works)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
