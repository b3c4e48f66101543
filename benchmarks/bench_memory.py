"""GPU calibration of the memory estimate: estimate against measured peak over a grid of real `lora-tui train` runs.

Each preset architecture is built from its stored config.json with random weights (no download) and saved with the
demo model's tokenizer; each grid point (model, r, targets, batch, sequence, 16-bit or 4-bit, checkpointing on or
off) is a real `lora-tui train` run of a few steps on text that fills every sequence. The run records its estimate
(made by the launcher, as for any run) and its measured peak (train/info.py's MemoryProbe) in training_info.json;
this prints both, per point:

- `estimate`: the estimate's total (what `plan` shows), and `parts`: the same without the overhead term (CUDA
  context and fragmentation), which is what the allocator's peak can be compared with;
- `allocated` / `reserved`: torch.cuda.max_memory_allocated / max_memory_reserved (CPU: peak resident-set growth);
- `alloc/parts` and `resv/est`: the two ratios to calibrate against (1.00: exact).

The full grid is sized for one GPU in under 8 minutes (`--budget-s`: no point is started after it); it has not run
on a GPU yet. `--quick` (what `make test` runs through benchmarks/quick.py): tiny models on the CPU, 2 steps, 3
points, to keep the script from rotting; its figures are RSS growth and mean nothing for calibration.

    python benchmarks/bench_memory.py [--quick] [--budget-s 450] [--steps 3] [--only MODEL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALL7 = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
"""The guide's maximum pattern."""

MODELS: dict[str, dict[str, Any]] = {
    "gemma-3-1b-it": {"preset": "gemma-3-1b-it"},
    "llama-3.2-1b": {"preset": "llama-3.2-1b"},
    "qwen3-1.7b": {"preset": "qwen3-1.7b"},
    "qwen3-moe-6l": {"preset": "qwen3-30b-a3b", "override": {"num_hidden_layers": 6, "max_window_layers": 6}},
    "llama-3.1-8b": {"preset": "llama-3.1-8b"},
}
"""Architectures of the full grid: preset configs (a mixture-of-experts one cut to 6 layers to fit the time)."""

QUICK_MODELS: dict[str, dict[str, Any]] = {
    "tiny-llama": {"preset": "demo"},
    "tiny-moe": {"preset": "qwen3-30b-a3b", "override": {
        "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "num_experts": 8,
        "num_experts_per_tok": 2, "vocab_size": 4096, "max_window_layers": 2}},
}
"""Architectures of `--quick`: the demo model's shape and a two-layer Qwen3-MoE, built from their configs."""


def point(model: str, r: int, targets: str, batch: int, seq: int, four_bit: bool, gc: bool) -> dict[str, Any]:
    """One grid point."""
    return {"model": model, "r": r, "targets": targets, "batch": batch, "seq": seq, "four_bit": four_bit, "gc": gc}


GRID = [
    point("gemma-3-1b-it", 16, ALL7, 2, 1024, False, True),
    point("gemma-3-1b-it", 16, ALL7, 2, 1024, False, False),
    point("gemma-3-1b-it", 16, ALL7, 2, 1024, True, True),
    point("gemma-3-1b-it", 8, "q_proj,v_proj", 8, 2048, False, True),
    point("llama-3.2-1b", 16, "all-linear", 2, 1024, False, True),
    point("llama-3.2-1b", 16, "all-linear", 2, 1024, False, False),
    point("llama-3.2-1b", 64, "q_proj,v_proj", 1, 4096, True, True),
    point("qwen3-1.7b", 16, "q_proj,k_proj,v_proj,o_proj", 4, 1024, False, False),
    point("qwen3-1.7b", 16, "q_proj,k_proj,v_proj,o_proj", 4, 1024, True, True),
    point("qwen3-moe-6l", 16, "q_proj,k_proj,v_proj,o_proj", 2, 1024, False, True),
    point("qwen3-moe-6l", 8, ALL7, 2, 1024, False, True),
    point("llama-3.1-8b", 16, ALL7, 1, 2048, False, True),
    point("llama-3.1-8b", 16, ALL7, 1, 2048, True, True),
]
"""The full grid, about 25-35 s per point on one GPU (most of it start-up and loading)."""

QUICK_GRID = [
    point("tiny-llama", 8, ALL7, 1, 64, False, False),
    point("tiny-llama", 8, ALL7, 1, 64, True, True),
    point("tiny-moe", 4, ALL7, 1, 64, False, True),
]
"""`--quick`: 16-bit and 4-bit on the demo shape, and fused experts through target_parameters."""

BUILD = r'''
import json, sys, torch
from transformers import AutoConfig, AutoModelForCausalLM
config_path, out, device = sys.argv[1:4]
cfg = dict(json.load(open(config_path)))
cfg.pop("architectures", None)
cfg.pop("torch_dtype", None)
config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
with torch.device(device):
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
model.save_pretrained(out)
'''
"""Child script: a model with random weights from a config, saved in bf16 (weights only, no download)."""


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited {proc.returncode}:\n{tail}")
    return proc


def _tokenizer_dir(work: Path, quick: bool, env: dict[str, str]) -> Path:
    """A directory with the demo model's tokenizer (built untrained for --quick, like bench_train)."""
    from lora_tui.train.demo import DEMO_DIR_NAME, build_demo_model, ensure_demo_model

    if not quick:
        return ensure_demo_model()
    target = Path(env["LORA_TUI_CACHE"]) / DEMO_DIR_NAME
    if not (target / "tokenizer.json").is_file():
        from lora_tui.train.quiet import quiet_libraries

        quiet_libraries()
        target.mkdir(parents=True, exist_ok=True)
        build_demo_model(target, steps=0)
    return target


def build_model(name: str, spec: dict[str, Any], work: Path, tokenizer: Path, device: str,
                env: dict[str, str]) -> Path:
    """A directory with the architecture's random weights and the demo tokenizer."""
    from lora_tui.core.models.modules import MODELS_DIR

    meta = json.loads((MODELS_DIR / f"{spec['preset']}.json").read_text(encoding="utf-8"))
    config = {**meta["config"], **spec.get("override", {})}
    out = work / "models" / name
    out.mkdir(parents=True)
    (work / f"{name}.config.json").write_text(json.dumps(config), encoding="utf-8")
    _run([sys.executable, "-c", BUILD, str(work / f"{name}.config.json"), str(out), device], env)
    for file in tokenizer.iterdir():
        if file.name.startswith("tokenizer") or file.name in ("chat_template.jinja", "special_tokens_map.json"):
            shutil.copy(file, out / file.name)
    return out


def data_file(work: Path, seq: int, examples: int = 64) -> Path:
    """Plain-text examples longer than `seq` tokens, so every batch is batch x seq after truncation."""
    path = work / f"text-{seq}.jsonl"
    if not path.exists():
        rng = random.Random(seq)
        words = ["the", "model", "learns", "memory", "from", "every", "token", "while", "training", "runs",
                 "adapter", "weights", "change", "slowly", "and", "the", "loss", "falls"]
        with open(path, "w", encoding="utf-8") as fh:
            for _ in range(examples):
                fh.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(2 * seq))}) + "\n")
    return path


def run_point(p: dict[str, Any], model_dir: Path, work: Path, steps: int, vram_gb: float | None,
              env: dict[str, str], index: int) -> dict[str, Any]:
    """One `lora-tui train` run; its estimate and measured peak from training_info.json."""
    out = work / "runs" / f"{index:02d}-{p['model']}"
    argv = [sys.executable, "-m", "lora_tui", "train", "--model", str(model_dir), "--data",
            str(data_file(work, p["seq"])), "--output", str(out), "--max-steps", str(steps), "--save-steps",
            str(steps + 100), "--eval-split", "0", "--batch-size", str(p["batch"]), "--gradient-accumulation-steps",
            "1", "--max-seq-length", str(p["seq"]), "--lora-r", str(p["r"]), "--lora-alpha", str(2 * p["r"]),
            "--lora-dropout", "0", "--target-modules", p["targets"],
            "--gradient-checkpointing" if p["gc"] else "--no-gradient-checkpointing",
            "--load-in-4bit" if p["four_bit"] else "--no-load-in-4bit"]
    if vram_gb is not None:
        argv += ["--vram-gb", f"{vram_gb:g}"]
    _run(argv, env)
    info = json.loads((out / "training_info.json").read_text(encoding="utf-8"))
    memory = info.get("memory") or {}
    estimate = memory.get("estimate") or {}
    parts = {part["key"]: part["bytes"] for part in estimate.get("parts", [])}
    measured = memory.get("measured") or {}
    shutil.rmtree(out, ignore_errors=True)
    return {**p, "estimate": estimate.get("total_bytes"), "parts": sum(v for k, v in parts.items() if k != "overhead"),
            "allocated": measured.get("peak_allocated_bytes", measured.get("peak_rss_growth_bytes")),
            "reserved": measured.get("peak_reserved_bytes"), "state": info.get("state"),
            "precision": info.get("precision")}


def _gib(value: Any) -> str:
    return f"{value / 2**30:7.2f}" if isinstance(value, (int, float)) else "      -"


def _ratio(a: Any, b: Any) -> str:
    return f"{a / b:5.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "    -"


def print_row(row: dict[str, Any]) -> None:
    """One line per point: the settings, estimate, measured peak and the ratios."""
    targets = "q..down (7)" if row["targets"] == ALL7 else row["targets"]
    what = (f"{row['model']:14s} r{row['r']:<3d} {targets[:27]:27s} b{row['batch']} s{row['seq']:<5d} "
            f"{'4bit' if row['four_bit'] else row.get('precision') or '16b':5s} gc {'on ' if row['gc'] else 'off'}")
    print(f"{what} {_gib(row['estimate'])} {_gib(row['parts'])} {_gib(row['allocated'])} {_gib(row['reserved'])}  "
          f"{_ratio(row['allocated'], row['parts'])}  {_ratio(row['reserved'], row['estimate'])}", flush=True)


def main() -> int:
    """Build the grid's models, run every point (until the budget), print estimate against measured."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models on the CPU, 2 steps, 3 points")
    parser.add_argument("--steps", type=int, help="optimizer steps per point (default 3, 2 with --quick)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="start no point after this many seconds")
    parser.add_argument("--only", action="append", help="run only the points of this model (repeatable)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    steps = args.steps or (2 if args.quick else 3)
    grid, models = (QUICK_GRID, QUICK_MODELS) if args.quick else (GRID, MODELS)
    grid = [p for p in grid if not args.only or p["model"] in args.only]
    started = time.time()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="lora-tui-bench-memory-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "LORA_TUI_CACHE": os.environ.get("LORA_TUI_CACHE", str(work / "cache")) if args.quick else
               os.environ.get("LORA_TUI_CACHE", str(Path.home() / ".cache" / "lora-tui")),
               "LORA_TUI_RUNS": str(work / "runs")}
        os.environ["LORA_TUI_CACHE"] = env["LORA_TUI_CACHE"]
        import torch

        device = "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
        vram_gb = torch.cuda.get_device_properties(0).total_memory / 1e9 if device == "cuda" else None
        gpu = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (peak RSS growth, not GPU memory)"
        print(f"device: {gpu}; {steps} steps per point; budget {args.budget_s:.0f} s", flush=True)
        tokenizer = _tokenizer_dir(work, args.quick, env)
        dirs: dict[str, Path] = {}
        print(f"{'point':72s} {'estimate':>7s} {'parts':>7s} {'alloc':>7s} {'reserv':>7s}  alloc/parts  resv/est")
        for i, p in enumerate(grid):
            if time.time() - started > args.budget_s:
                print(f"budget of {args.budget_s:.0f} s spent: {len(grid) - i} point(s) not run", flush=True)
                break
            try:
                if p["model"] not in dirs:
                    dirs[p["model"]] = build_model(p["model"], models[p["model"]], work, tokenizer, device, env)
                print_row(run_point(p, dirs[p["model"]], work, steps, vram_gb, env, i))
            except RuntimeError as exc:
                failed += 1
                print(f"{p['model']} {p}: FAILED\n{exc}", flush=True)
    print(f"{len(grid) - failed} point(s) in {time.time() - started:.0f} s" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
