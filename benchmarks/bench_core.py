"""How fast `plan` and `recommend` answer for preset models: in-process and as a CLI subprocess.

Prints the median of several runs for each, and the CLI times as a ratio to a bare `python -c pass` start-up
(the floor any command pays). Not part of the test run.

    .venv/bin/python benchmarks/bench_core.py [--repeat N] [--model M ...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

DEFAULT_MODELS = ("gemma-3-1b-it", "Llama-3.1-8B", "Qwen3-8B", "microsoft/Phi-3-mini-4k-instruct")
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_cli(*argv: str) -> None:
    """Run one lora-tui command in a fresh interpreter; fail loudly on a non-zero exit."""
    subprocess.run([sys.executable, "-m", "lora_tui", *argv], check=True, capture_output=True)


def in_process_plan(model: str) -> None:
    """Load the inventory (cold caches) and compute the seven-projection math and the memory estimate."""
    from lora_tui.core.lora_math import compute_lora_math
    from lora_tui.core.models import modules

    modules._preset_files.cache_clear()
    modules._load_preset_file.cache_clear()
    inv = modules.load_inventory(model)
    compute_lora_math(inv, r=16, lora_alpha=32, target_modules=SEVEN)
    try:
        from lora_tui.core.memory import estimate_memory
    except ImportError:
        return
    estimate_memory(inv, lora_r=16, target_modules=["q_proj", "v_proj"], batch_size=2, seq_len=1024,
                    vram_bytes=24_000_000_000)


def in_process_recommend(model: str) -> bool:
    """recommend() with the model's inventory; False when core.recommend is not there."""
    try:
        from lora_tui.core.recommend import recommend
    except ImportError:
        return False
    from lora_tui.core.models.modules import load_inventory

    recommend(task="chat", examples=5000, vram_bytes=24_000_000_000, inventory=load_inventory(model))
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--model", action="append", help="preset to time (repeatable)")
    args = parser.parse_args()
    models = args.model or list(DEFAULT_MODELS)

    floor = median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeat)
    print(f"python -c pass: {floor * 1000:7.1f} ms (the ratio's denominator)\n")
    print(f"{'model':34s} {'what':10s} {'in-process':>11s} {'CLI':>9s} {'CLI / python':>13s}")
    has_recommend = in_process_recommend(models[0])
    for model in models:
        plan_in = median_seconds(lambda m=model: in_process_plan(m), args.repeat)
        plan_cli = median_seconds(lambda m=model: run_cli("plan", "--model", m, "--target-modules", ",".join(SEVEN),
                                                          "--vram-gb", "24", "--json"), args.repeat)
        print(f"{model:34s} {'plan':10s} {plan_in * 1000:8.2f} ms {plan_cli * 1000:6.0f} ms {plan_cli / floor:12.1f}x")
        if has_recommend:
            rec_in = median_seconds(lambda m=model: in_process_recommend(m), args.repeat)
            rec_cli = median_seconds(lambda m=model: run_cli("recommend", "--task", "chat", "--examples", "5000",
                                                             "--vram-gb", "24", "--model", m, "--json"), args.repeat)
            print(f"{'':34s} {'recommend':10s} {rec_in * 1000:8.2f} ms {rec_cli * 1000:6.0f} ms "
                  f"{rec_cli / floor:12.1f}x")
    if not has_recommend:
        print("\n(lora_tui.core.recommend is not available: recommend not timed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
