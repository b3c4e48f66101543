"""Time to first screen of lora-tui against a bare Textual app, and key latency while a run floods its log.

Each measurement runs in a fresh interpreter (imports included), several times; the medians and the ratio are
printed. The issue's targets: first screen within 1.5x a bare app; keys handled within 100 ms while a run writes
thousands of log lines a second.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5

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
    import ui_fakes
    app = make_app(hardware_probe=ui_fakes.probe(24), gpu_query=ui_fakes.gpu_query(24), gpu_interval=0)
    def shown():
        print(time.perf_counter() - t0); app.exit()
    app.call_later(lambda: app.call_after_refresh(shown))
    app.run(headless=True, size=(120, 40))
""")

KEYS = textwrap.dedent("""
    import asyncio, os, sys, threading, time
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from pathlib import Path
    from lora_tui.core import runs
    from lora_tui.ui.app import make_app
    import ui_fakes
    run = Path({run!r}); run.mkdir(parents=True, exist_ok=True)
    runs.write_status(run, runs.RunStatus(state="running", pid=os.getpid(), started_at=time.time(), max_steps=100))
    stop = threading.Event()
    written = [0]
    def flood():
        with open(run / runs.LOG_FILE, "a") as fh:
            while not stop.is_set():
                fh.write("".join(f"step {{i}} loss 1.234 lr 5e-5 tokens/s 1000\\n" for i in range(200)))
                fh.flush(); written[0] += 200; time.sleep(0.02)
    async def main():
        app = make_app(hardware_probe=ui_fakes.probe(None), gpu_query=ui_fakes.gpu_query(None), gpu_interval=0,
                       poll_interval=0.1, start="runs", open_run=run)
        threading.Thread(target=flood, daemon=True).start()
        t_start = time.perf_counter()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)
            lat = []
            for _ in range(20):
                t = time.perf_counter()
                await pilot.press("pageup"); await pilot.press("pagedown")
                lat.append((time.perf_counter() - t) / 2)
                await pilot.pause(0.05)
            lines = len(app.screen.query_one("#mon-log").lines) if hasattr(app.screen, "query_one") else 0
        stop.set()
        rate = written[0] / (time.perf_counter() - t_start)
        lat.sort()
        print(f"{{lat[len(lat)//2]*1000:.1f}} {{lat[-1]*1000:.1f}} {{rate:.0f}} {{lines}}")
    asyncio.run(main())
""")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    """Print the medians and ratios."""
    tests = str(ROOT / "tests" / "ui")
    bare = [float(_run(BARE)) for _ in range(RUNS)]
    ours = [float(_run(LORA_TUI.format(root=str(ROOT), tests=tests))) for _ in range(RUNS)]
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"first screen: bare Textual {b * 1000:.0f} ms, lora-tui {o * 1000:.0f} ms, ratio {o / b:.2f} "
          f"(target <= 1.5)")
    with tempfile.TemporaryDirectory() as tmp:
        med, worst, rate, lines = _run(KEYS.format(root=str(ROOT), tests=tests, run=str(Path(tmp) / "run"))).split()
    print(f"keys while the log grows at {float(rate):,.0f} lines/s: median {med} ms, worst {worst} ms "
          f"(target < 100 ms); log pane holds {lines} lines (bounded at 5000)")


if __name__ == "__main__":
    main()
