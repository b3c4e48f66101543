"""How fast `plan` and `recommend` answer for preset models: in-process and as a CLI subprocess.

Prints the median of several runs for each, and the CLI times as a ratio to a bare `python -c pass` start-up
(the floor any command pays). Each model is planned with the linear layers it really has (read from its
inventory: Phi-3's fused qkv_proj and gate_up_proj, the seven separate projections elsewhere), so a preset
whose names change cannot make the benchmark ask for targets that match nothing.

`--quick` (what `make test` runs): one repeat, two models (one with separate and one with fused projections),
the same calls; no speed targets, but any crash exits non-zero.

    .venv/bin/python benchmarks/bench_core.py [--quick] [--repeat N] [--model M ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_MODELS = ("gemma-3-1b-it", "Llama-3.1-8B", "Qwen3-8B", "microsoft/Phi-3-mini-4k-instruct")
"""Presets timed by default: three with separate q/k/v/gate/up projections, one (Phi-3) with fused ones."""
QUICK_MODELS = ("gemma-3-1b-it", "microsoft/Phi-3-mini-4k-instruct")
"""Presets `--quick` runs: one of each projection layout."""
VRAM_BYTES = 24_000_000_000
"""The GPU the estimates are made for: 24 GB."""


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_cli(*argv: str) -> None:
    """Run one lora-tui command in a fresh interpreter; raise, with its stderr, on a non-zero exit."""
    proc = subprocess.run([sys.executable, "-m", "lora_tui", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"lora-tui {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")


def targets_of(model: str) -> tuple[list[str], list[str]]:
    """(every attention and MLP linear, the attention ones) of the model, by the names its inventory has."""
    from lora_tui.core.models.modules import load_inventory

    linears = load_inventory(model).linears
    attention = [k.name for k in linears if k.group == "attention"]
    return attention + [k.name for k in linears if k.group == "mlp"], attention


def in_process_plan(model: str) -> None:
    """Load the inventory (cold caches), compute the LoRA math on every linear and the memory estimate."""
    from lora_tui.core.lora_math import compute_lora_math
    from lora_tui.core.memory import estimate_memory
    from lora_tui.core.models import modules

    modules._preset_files.cache_clear()
    modules._load_preset_file.cache_clear()
    inv = modules.load_inventory(model)
    every, attention = targets_of(model)
    compute_lora_math(inv, r=16, lora_alpha=32, target_modules=every)
    estimate_memory(inv, lora_r=16, target_modules=attention, batch_size=2, seq_len=1024, vram_bytes=VRAM_BYTES)


def in_process_recommend(model: str) -> None:
    """recommend() with the model's inventory."""
    from lora_tui.core.models.modules import load_inventory
    from lora_tui.core.recommend import recommend

    recommend(task="chat", examples=5000, vram_bytes=VRAM_BYTES, inventory=load_inventory(model))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat of two models: a smoke run, seconds")
    parser.add_argument("--repeat", type=int, help="runs per figure (default 5, 1 with --quick)")
    parser.add_argument("--model", action="append", help="preset to time (repeatable)")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 5)
    models = args.model or list(QUICK_MODELS if args.quick else DEFAULT_MODELS)

    floor = median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat)
    print(f"python -c pass: {floor * 1000:7.1f} ms (the ratio's denominator)\n")
    print(f"{'model':34s} {'what':10s} {'in-process':>11s} {'CLI':>9s} {'CLI / python':>13s}")
    for model in models:
        every = ",".join(targets_of(model)[0])
        plan_in = median_seconds(lambda m=model: in_process_plan(m), repeat)
        plan_cli = median_seconds(lambda m=model, t=every: run_cli("plan", "--model", m, "--target-modules", t,
                                                                   "--vram-gb", "24", "--json"), repeat)
        print(f"{model:34s} {'plan':10s} {plan_in * 1000:8.2f} ms {plan_cli * 1000:6.0f} ms {plan_cli / floor:12.1f}x")
        rec_in = median_seconds(lambda m=model: in_process_recommend(m), repeat)
        rec_cli = median_seconds(lambda m=model: run_cli("recommend", "--task", "chat", "--examples", "5000",
                                                         "--vram-gb", "24", "--model", m, "--json"), repeat)
        print(f"{'':34s} {'recommend':10s} {rec_in * 1000:8.2f} ms {rec_cli * 1000:6.0f} ms {rec_cli / floor:12.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
