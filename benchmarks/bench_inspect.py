"""How fast `inspect_dataset` streams a large JSONL file, compared with a bare json.loads loop.

Usage: python benchmarks/bench_inspect.py [--quick] [--mb 200]
Prints records/s, MB/s and the ratio of inspect time to `for line in f: json.loads(line)`. `--quick` (what
`make test` runs) reads a 2 MB file: the same code path in well under a second, no speed target; it exits
non-zero if inspect crashes or miscounts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_tui.core.dataset.report import inspect_dataset  # noqa: E402

QUICK_MB = 2
"""Size of the generated file with `--quick`."""


def _write(path: Path, megabytes: int) -> int:
    """A chat JSONL of about `megabytes` MB with varied lengths; returns the record count."""
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog 日本語 の テキスト も 少し".split()
    target = megabytes * 2**20
    written = count = 0
    with path.open("w", encoding="utf-8") as fh:
        while written < target:
            turns = [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": " ".join(rng.choices(words, k=rng.randint(5, 60)))},
                {"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randint(10, 200)))},
            ]
            line = json.dumps({"messages": turns}, ensure_ascii=False) + "\n"
            fh.write(line)
            written += len(line.encode("utf-8"))
            count += 1
    return count


def _bare_loop(path: Path) -> float:
    """Seconds for the plainest possible read: json.loads on every line."""
    start = time.perf_counter()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            json.loads(line)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_MB} MB file: a smoke run, under a second")
    parser.add_argument("--mb", type=int, help=f"size of the generated file in MB (200; {QUICK_MB} with --quick)")
    args = parser.parse_args()
    megabytes = args.mb or (QUICK_MB if args.quick else 200)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        records = _write(path, megabytes)
        size_mb = path.stat().st_size / 2**20
        bare = _bare_loop(path)
        start = time.perf_counter()
        report = inspect_dataset(path)
        inspect_s = time.perf_counter() - start
    if report.examples != records or not report.ok:
        print(f"inspect counted {report.examples} of {records} records; issues: {report.issues[:3]}", file=sys.stderr)
        return 1
    print(f"file: {size_mb:.0f} MB, {records:,} records")
    print(f"inspect: {inspect_s:.2f} s, {records / inspect_s:,.0f} records/s, {size_mb / inspect_s:.1f} MB/s")
    print(f"bare json.loads loop: {bare:.2f} s, {records / bare:,.0f} records/s")
    print(f"ratio inspect / bare loop: {inspect_s / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
