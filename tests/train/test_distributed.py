"""Several machines on this one (two `lora-tui train` commands, one per node, gloo on the CPU), and FSDP.

Each node is its own `lora-tui train` process with its own `--node-rank`, as on two machines; the run directory
is the same path on both (shared storage), so node 0 can show node 1's last log lines when node 1 dies.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lora_tui.cli import main
from lora_tui.core import run_lock, run_world, runs

pytestmark = pytest.mark.slow

SMALL = ["--model", "demo", "--batch-size", "1", "--gradient-accumulation-steps", "1", "--max-seq-length", "128"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _node(rank: int, port: int, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """One node's `lora-tui train --detach` (returns once its training processes are started)."""
    args = [sys.executable, "-m", "lora_tui", "train", *SMALL, "--nnodes", "2", "--node-rank", str(rank),
            "--master-addr", "127.0.0.1", "--master-port", str(port), "--output", str(out), "--detach", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _wait(what: Callable[[], bool], timeout: float = 150) -> None:
    end = time.monotonic() + timeout
    while not what():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.2)


def _state(out: Path) -> str | None:
    status = runs.read_status(out)
    return status.state if status else None


STARTED: list[int] = []
"""Process groups the tests started (each node's torchrun): killed after every test, passed or not."""


@pytest.fixture(autouse=True)
def _kill_started() -> Iterator[None]:
    yield
    while STARTED:
        try:
            _kill_node(STARTED.pop())
        except ProcessLookupError:
            pass


def _pid(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stdout + result.stderr
    pid = int(re.search(r"pid:? (\d+)", result.stdout).group(1))  # type: ignore[union-attr]
    STARTED.append(pid)
    return pid


def _both(out: Path, *extra: str, node1: tuple[str, ...] = ()) -> int:
    """Start node 0 then node 1; node 1's process group id."""
    port = _free_port()
    _pid(_node(0, port, out, *extra))  # returns once node 0 owns the run directory; its torchrun waits for node 1
    return _pid(_node(1, port, out, *extra, *node1))


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (torchrun starts its workers in sessions of their own, so a signal to its
    process group does not reach them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_node(pgid: int) -> None:
    """What a machine going down does to its node: torchrun and its workers die at once."""
    below = _descendants(pgid)
    os.killpg(pgid, signal.SIGKILL)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _shapes(adapter: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as fh:
        return {key: list(fh.get_slice(key).get_shape()) for key in fh.keys()}  # noqa: SIM118


def test_two_nodes_killed_then_resumed_make_one_adapter(demo_model: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    steps = ["--max-steps", "24", "--save-steps", "4"]
    node1 = _both(out, *steps)
    _wait(lambda: (out / "checkpoints" / "checkpoint-4" / runs.COMPLETE_MARKER).is_file() or
          _state(out) not in ("starting", "running"))
    _kill_node(node1)  # node 1 dies midway: node 0 stops, failed, with node 1's last lines
    _wait(lambda: _state(out) == "failed")
    status = runs.read_status(out)
    assert status is not None and "node 1's last lines (node-1.log)" in (status.error or ""), status
    assert not runs.is_adapter_dir(out)
    from lora_tui.ui.screens.monitor_text import error_parts

    assert error_parts(status.error)[-1].startswith("node 1's last lines (node-1.log): ")  # the monitor's own line
    _wait(lambda: run_lock.probe(out) is False, 60)  # node 0's processes end after saying so
    _both(out, *steps, "--resume")
    _wait(lambda: _state(out) not in ("starting", "running"))
    status = runs.read_status(out)
    assert status is not None and status.state == "finished" and status.step == 24, status
    info = json.loads((out / runs.INFO_FILE).read_text())
    assert info["world_size"] == 2 and info["settings"]["nnodes"]["value"] == 2 and info["effective_batch_size"] == 2
    assert "resumed from checkpoint-" in (out / runs.LOG_FILE).read_text()
    ranks = run_world.read_ranks(out)  # every rank's peak memory, gathered on rank 0 at the logging steps
    assert ranks is not None and sorted((r.rank, r.node, r.device) for r in ranks) == [(0, 0, "cpu"), (1, 1, "cpu")]
    assert all(r.peak_bytes is not None and r.peak_bytes > 0 for r in ranks)
    assert main(["runs", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "world size       2 (2 nodes x 1)\n  node 0: " in shown
    assert "  node 1: " in shown and "peak resident-set growth of 1 process on the CPU (rank 1 " in shown
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("node-")) == ["node-1.log"]
    single = tmp_path / "single"
    done = subprocess.run([sys.executable, "-m", "lora_tui", "train", *SMALL, "--max-steps", "1", "--output",
                           str(single)], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _shapes(out) == _shapes(single) and len(_shapes(out)) == 56


def test_a_plan_that_differs_is_refused_on_both_nodes(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _both(out, "--max-steps", "2", "--lora-r", "8", node1=("--lora-r", "4"))
    _wait(lambda: _state(out) == "failed" and "refused" in _text(out / "node-1.log"))
    status = runs.read_status(out)
    message = "rank 1 (node 1) has a different plan: lora_alpha"
    assert status is not None and message in (status.error or ""), status
    assert "lora_r = 4 (rank 0: 8)" in status.error  # type: ignore[operator]
    assert message in _text(out / "node-1.log") and "lora-tui: refused:" in _text(out / runs.LOG_FILE)
    assert not (out / "checkpoints").exists()


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_fsdp_wraps_the_decoder_layers_and_is_refused_without_a_gpu(demo_model: Path, tmp_path: Path) -> None:
    from lora_tui.core.plan import TrainingPlan
    from lora_tui.train.distributed import fsdp_arguments

    plan = TrainingPlan(num_processes=2, distributed="fsdp")
    args = fsdp_arguments(plan, str(demo_model))
    assert args["fsdp"] is True and args["fsdp_config"]["reshard_after_forward"] is True  # full sharding
    assert args["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert args["fsdp_config"]["version"] == 2 and args["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"
    assert fsdp_arguments(TrainingPlan(num_processes=2), str(demo_model)) == {}
    # accelerate shards only across GPUs: on the CPU the run is refused before anything is written
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "lora_tui", "train", *SMALL, "--num-processes", "2",
                           "--distributed", "fsdp", "--max-steps", "2", "--output", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "--distributed fsdp needs CUDA GPUs" in done.stderr, done.stderr
    assert not out.exists()
