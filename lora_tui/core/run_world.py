"""A run's world (machines x processes on each) and every process's peak memory, read from the run files and said
in the lines the monitor and `runs show` both print.

The world size is what the run recorded (status.json's `world_size` while it runs, training_info.json's after),
else its plan's; the machines are the plan's `nnodes` (run.toml). Every process's peak memory is in metrics.jsonl
(`MetricsRecord.ranks`: the training processes gather it on rank 0 at each logging step, and rank 0 writes it
where one of them changed). A run of one process, or one written by an older lora-tui, has none: then only rank
0's measurement (`core.memory_check`) is shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_tui.core import run_files, runs
from lora_tui.core.run_files import MetricsRecord, RankMemory
from lora_tui.core.units import GIB, fmt_bytes
from lora_tui.i18n import _, ngettext


@dataclass(frozen=True)
class World:
    """How many training processes a run has, on how many machines."""

    size: int
    """Training processes of the whole run."""
    nodes: int
    """Machines (node ranks) they run on."""
    sharded: bool = False
    """Whether the weights are sharded across the processes (`distributed = fsdp`), else replicated (ddp)."""

    @property
    def per_node(self) -> int:
        """Processes on each machine."""
        return max(1, self.size // max(1, self.nodes))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def world_of(status: runs.RunStatus | None, plan: Any, recorded: int | None = None) -> World | None:
    """The run's world: the size its status (or `recorded`, training_info.json's) holds, else its plan's; the
    machines from the plan. None when neither is known."""
    size = _count(status.extra.get("world_size") if status is not None else None) or _count(recorded)
    nodes = _count(getattr(plan, "nnodes", None)) or 1
    if size is None and plan is not None:
        size = _count(getattr(plan, "world_size", None))
    sharded = getattr(plan, "distributed", None) == "fsdp"
    return World(size, min(nodes, size), sharded and size > 1) if size is not None else None


def world_shape(world: World) -> str:
    """`4 (2 nodes x 2)`: the world size, and machines x processes on each (`, weights sharded (FSDP)` when they
    are); `1` for one process."""
    if world.size <= 1:
        return "1"
    shape = ngettext("{size} ({nodes} node x {per})", "{size} ({nodes} nodes x {per})", world.nodes).format(
        size=world.size, nodes=world.nodes, per=world.per_node)
    return _("{shape}, weights sharded (FSDP)").format(shape=shape) if world.sharded else shape


def world_line(world: World | None) -> str | None:
    """`world size 4 (2 nodes x 2)` for a run of several processes, None for one (or an unknown world)."""
    if world is None or world.size <= 1:
        return None
    return _("world size {shape}").format(shape=world_shape(world))


def last_ranks(records: Sequence[MetricsRecord]) -> list[RankMemory] | None:
    """Every process's peak memory at the latest record that holds it (None when none does)."""
    return next((record.ranks for record in reversed(records) if record.ranks), None)


def read_ranks(run_dir: str | Path) -> list[RankMemory] | None:
    """The latest per-process peak memory in a run's metrics.jsonl, its one history applied (only the lines that
    hold it, and the resume markers, are parsed)."""
    try:
        data = (Path(run_dir) / runs.METRICS_FILE).read_bytes()
    except OSError:
        return None
    picked = []
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        if b'"ranks"' not in line and b'"superseded_after"' not in line:
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            picked.append(MetricsRecord.from_dict(obj))
    return last_ranks(run_files.one_history(picked))


def _gpu(rank: RankMemory) -> str:
    """`GPU1 4.5/80.0 GiB`: one GPU's peak allocated memory, of the GPU's memory when known."""
    if rank.total_bytes and rank.peak_bytes is not None:
        return f"GPU{rank.local_rank} {rank.peak_bytes / GIB:.1f}/{rank.total_bytes / GIB:.1f} GiB"
    return f"GPU{rank.local_rank} {fmt_bytes(rank.peak_bytes)}"


def _by_node(ranks: Sequence[RankMemory] | None) -> dict[int, list[RankMemory]]:
    """The measured processes of each machine, in machine and local rank order."""
    by_node: dict[int, list[RankMemory]] = {}
    for rank in sorted(ranks or (), key=lambda r: (r.node, r.local_rank, r.rank)):
        if rank.peak_bytes is not None:
            by_node.setdefault(rank.node, []).append(rank)
    return by_node


def _on_gpus(ranks: Sequence[RankMemory]) -> bool:
    return all(r.device == "cuda" for r in ranks)


def node_lines(ranks: Sequence[RankMemory] | None) -> list[str]:
    """One line per machine: its processes' peak memory summed, then each GPU's (or each CPU process's)."""
    lines = []
    for node, mine in _by_node(ranks).items():
        total = fmt_bytes(sum(r.peak_bytes or 0 for r in mine))
        if _on_gpus(mine):
            line = ngettext("node {node}: {total} peak allocated on {count} GPU ({each})",
                            "node {node}: {total} peak allocated on {count} GPUs ({each})", len(mine))
            each = _(", ").join(_gpu(r) for r in mine)
        else:
            line = ngettext("node {node}: {total} peak resident-set growth of {count} process on the CPU ({each})",
                            "node {node}: {total} peak resident-set growth of {count} processes on the CPU "
                            "({each})", len(mine))
            each = _(", ").join(_("rank {rank} {size}").format(rank=r.rank, size=fmt_bytes(r.peak_bytes))
                                for r in mine)
        lines.append(line.format(node=node, total=total, count=len(mine), each=each))
    return lines


def nodes_brief(ranks: Sequence[RankMemory] | None) -> str | None:
    """Every machine's summed peak memory in one line (None when unknown); each GPU's is in `node_lines`."""
    by_node = _by_node(ranks)
    if not by_node:
        return None
    nodes = _(", ").join(_("node {node} {size}").format(node=node, size=fmt_bytes(sum(r.peak_bytes or 0 for r in
                                                                                      mine)))
                         for node, mine in by_node.items())
    if all(_on_gpus(mine) for mine in by_node.values()):
        return _("peak allocated by node: {nodes}").format(nodes=nodes)
    return _("peak resident-set growth by node: {nodes}").format(nodes=nodes)
