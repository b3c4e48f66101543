"""Run every `benchmarks/bench_*.py` in its `--quick` mode, one after another; `make bench-quick` (and so
`make test`) calls this.

Every benchmark found is run, so a new one cannot be left out, and each must accept `--quick`. They run with a
private cache and runs root (a temporary directory, removed afterwards), offline, so they neither read nor
write the user's. Prints each one's wall time; exits 1 if any of them failed, after running the rest.

    .venv/bin/python benchmarks/quick.py [NAME ...]   (e.g. `core train`; default: all)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
"""The benchmarks directory."""
TIMEOUT_S = 180
"""Longest one quick benchmark may take before it counts as failed (they take seconds)."""


def main(argv: list[str]) -> int:
    """Run the quick modes; 0 when all of them passed."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in argv]
    failed: list[str] = []
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lora-tui-bench-") as tmp:
        env = {**os.environ, "LORA_TUI_CACHE": str(Path(tmp) / "cache"), "LORA_TUI_RUNS": str(Path(tmp) / "runs"),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
        for script in scripts:
            print(f"== {script.name} --quick", flush=True)
            start = time.perf_counter()
            try:
                code = subprocess.run([sys.executable, str(script), "--quick"], env=env, cwd=HERE.parent,
                                      timeout=TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                print(f"   timed out after {TIMEOUT_S} s", file=sys.stderr)
                code = -1
            print(f"== {script.name}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
                  f"in {time.perf_counter() - start:.1f} s\n", flush=True)
            if code != 0:
                failed.append(script.name)
    print(f"quick benchmarks: {len(scripts) - len(failed)} of {len(scripts)} passed "
          f"in {time.perf_counter() - total:.1f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed or not scripts else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
