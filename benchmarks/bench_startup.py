"""Time to first screen of lora-tui against a bare Textual app, and key latency while a run floods its log.

Each measurement runs in a fresh interpreter (imports included). Start-up: several runs of each app, the
medians and their ratio (and the ratio of the best runs, steadier on a busy machine). Keys: a writer thread
appends `--rate` lines a second to a run's run.log while the monitor follows it; a second thread plays the
terminal driver, posting a key event to the app every so often and noting the time; a binding's action notes
when the app handles it. The difference is the key latency (not the time a test Pilot waits for the screen to
go idle, which under a log flood is never). The issue's targets: first screen within 1.5x a bare app; keys
handled within 100 ms while a run writes thousands of log lines a second; the log pane bounded.

`--quick` (what `make test` runs): one start-up of each app and a short, light flood (2,000 lines/s, 1 s, 5
keys): the same code paths in a few seconds. It prints the same lines with no speed targets checked, and exits
non-zero if either app fails to start or a key goes unhandled.

Usage: .venv/bin/python benchmarks/bench_startup.py [--quick] [--rate 20000] [--seconds 6] [--keys 60] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lora_tui.core.follow import LOG_LINES_KEPT  # noqa: E402

FULL = {"rate": 20_000, "seconds": 6.0, "keys": 60, "runs": 5}
"""The full run's settings: the issue's flood (20,000 lines/s) and five start-ups of each app."""
QUICK = {"rate": 2_000, "seconds": 1.0, "keys": 5, "runs": 1}
"""`--quick`'s settings: the same measurements, small."""

BARE = textwrap.dedent("""
    import time; t0 = time.perf_counter()
    from textual.app import App
    from textual.widgets import Footer, Header, Static
    class Bare(App):
        def compose(self):
            yield Header(); yield Static("hello"); yield Footer()
        def on_mount(self):
            self.call_after_refresh(lambda: (print(time.perf_counter() - t0), self.exit()))
    Bare().run(headless=True, size=(120, 40))
""")

LORA_TUI = textwrap.dedent("""
    import time; t0 = time.perf_counter()
    import sys; sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from lora_tui.ui.app import make_app
    from tests.helpers import ui_fakes
    app = make_app(hardware_probe=ui_fakes.probe(24), gpu_query=ui_fakes.gpu_query(24), gpu_interval=0)
    def shown():
        print(time.perf_counter() - t0); app.exit()
    app.call_later(lambda: app.call_after_refresh(shown))
    app.run(headless=True, size=(120, 40))
""")

KEYS = textwrap.dedent("""
    import asyncio, os, statistics, sys, threading, time
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from pathlib import Path
    import psutil
    from textual import events
    from lora_tui.core import runs
    from lora_tui.ui.app import make_app
    from tests.helpers import ui_fakes
    RATE, SECONDS, KEYS = {rate}, {seconds}, {keys}
    run = Path({run!r}); run.mkdir(parents=True, exist_ok=True)
    runs.write_status(run, runs.RunStatus(state="running", pid=os.getpid(), started_at=time.time(), max_steps=100))
    stop = threading.Event()
    written = [0]
    posted, handled = [], []
    def flood():
        batch = max(1, RATE // 50)  # every 20 ms
        with open(run / runs.LOG_FILE, "a") as fh:
            n, t0 = 0, time.perf_counter()
            while not stop.is_set():
                fh.write("".join(f"step {{n + i}} loss 1.234 lr 5e-5 grad_norm 0.98 tokens/s 1000\\n"
                                 for i in range(batch)))
                fh.flush(); n += batch; written[0] = n
                time.sleep(max(0.0, t0 + n / RATE - time.perf_counter()))
    async def main():
        app = make_app(hardware_probe=ui_fakes.probe(None), gpu_query=ui_fakes.gpu_query(None), gpu_interval=0,
                       start="runs", open_run=run)
        app.bind("f9", "bench_key", show=False)
        app.action_bench_key = lambda: handled.append(time.perf_counter())
        loop = asyncio.get_running_loop()
        proc = psutil.Process()
        rss, pane = [], []
        def typist():  # the terminal's input thread: posts a key, as the driver does, every ~100 ms
            time.sleep(1.5)
            rss.append(proc.memory_info().rss)
            for i in range(KEYS):
                posted.append(time.perf_counter())
                loop.call_soon_threadsafe(app.post_message, events.Key("f9", None))
                time.sleep(SECONDS / KEYS)
            time.sleep(0.5)
            rss.append(proc.memory_info().rss)
            pane.extend(app.call_from_thread(lambda: list(app.screen.query_one("#mon-log").lines)))
            stop.set()
            loop.call_soon_threadsafe(app.exit)
        threading.Thread(target=flood, daemon=True).start()
        t_start = time.perf_counter()
        threading.Thread(target=typist, daemon=True).start()
        await app.run_async(headless=True, size=(120, 40))
        elapsed = time.perf_counter() - t_start
        text_bytes = sum(sys.getsizeof(x) for x in pane)
        lat = sorted((h - p) * 1000 for p, h in zip(posted, handled))
        assert len(handled) == len(posted), (len(handled), len(posted))
        p95 = lat[max(0, int(round(0.95 * len(lat))) - 1)]
        print(statistics.median(lat), p95, lat[-1], written[0] / elapsed, len(pane), text_bytes, rss[0], rss[-1])
    asyncio.run(main())
""")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return out.stdout.strip().splitlines()[-1]


def main() -> int:
    """Print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK}")
    parser.add_argument("--rate", type=int, help=f"log lines written per second during the flood ({FULL['rate']})")
    parser.add_argument("--seconds", type=float, help=f"how long keys are typed during the flood ({FULL['seconds']})")
    parser.add_argument("--keys", type=int, help=f"keys typed during the flood ({FULL['keys']})")
    parser.add_argument("--runs", type=int, help=f"start-ups timed for each app ({FULL['runs']})")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    tests = str(ROOT / "tests" / "helpers")
    bare = [float(_run(BARE)) for _ in range(args.runs)]
    ours = [float(_run(LORA_TUI.format(root=str(ROOT), tests=tests))) for _ in range(args.runs)]
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"first screen (median of {args.runs}): bare Textual {b * 1000:.0f} ms, lora-tui {o * 1000:.0f} ms, "
          f"ratio {o / b:.2f} (target <= 1.5); best of each: ratio {min(ours) / min(bare):.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        code = KEYS.format(root=str(ROOT), tests=tests, run=str(Path(tmp) / "run"), rate=args.rate,
                           seconds=args.seconds, keys=args.keys)
        med, p95, worst, rate, lines, pane, rss0, rss1 = (float(x) for x in _run(code).split())
    print(f"keys while the log grows at {rate:,.0f} lines/s ({args.keys} keys, posted as the terminal driver "
          f"does, timed to the key's action): median {med:.1f} ms, p95 {p95:.1f} ms, worst {worst:.1f} ms; "
          f"p95 / 100 ms target = {p95 / 100:.2f}")
    print(f"log pane: {int(lines):,} lines kept (bound {LOG_LINES_KEPT:,}), {pane / 2**20:.2f} MiB of text; "
          f"process RSS {rss0 / 2**20:.0f} -> {rss1 / 2**20:.0f} MiB over the flood "
          f"(growth ratio {rss1 / rss0:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
