"""Several processes, several machines, sharded weights: the plan's distributed settings without torch.

`TrainingPlan` holds `num_processes` (per machine), `nnodes`, `node_rank`, `master_addr`, `master_port` and
`distributed` (ddp or fsdp); this module checks them together, builds the torchrun command of each node, and
says which settings may differ between the nodes of one run (the rest must be equal: the training processes
compare them before they train, `lora_tui.train.distributed`).

Node 0 owns the run directory (lock, run.toml, status, metrics, checkpoints, adapter). Another node writes only
its own log, `RUN/node-R.log`, and hands its plan to its training process in the environment (`PLAN_ENV`), so
the run directory need not be on storage the machines share.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from lora_tui.i18n import _

STRATEGIES = ("ddp", "fsdp")
"""Allowed values of `distributed`: ddp (each GPU holds the whole base) or fsdp (the base sharded, FSDP2)."""

PER_NODE = ("node_rank", "output")
"""Plan fields that may differ between the nodes of one run; every other field must be equal on all of them."""

PLAN_ENV = "LORA_TUI_NODE_PLAN"
"""Environment variable holding the run file text for the training processes of a node other than 0."""

DEFAULT_PORT = 29500
"""torchrun's own default rendezvous port."""


def node_log_name(node_rank: int) -> str:
    """The log file of a node's training processes: run.log on node 0, node-R.log on the others."""
    return "run.log" if node_rank == 0 else f"node-{node_rank}.log"


def world_size(plan: Any) -> int:
    """Training processes of the whole run: machines x processes per machine."""
    return int(plan.nnodes) * int(plan.num_processes)


def problems(plan: Any) -> list[tuple[str, str]]:
    """(field, what is wrong) for distributed settings that do not go together; empty when they do."""
    out: list[tuple[str, str]] = []
    if plan.distributed not in STRATEGIES:
        out.append(("distributed", _("must be one of {choices}, got {value!r}").format(
            choices=", ".join(STRATEGIES), value=plan.distributed)))
    rank = plan.node_rank
    if not (isinstance(rank, int) and not isinstance(rank, bool) and 0 <= rank < max(int(plan.nnodes), 1)):
        out.append(("node_rank", _("must be a whole number from 0 to --nnodes - 1 ({top}), got {value!r}").format(
            top=int(plan.nnodes) - 1, value=rank)))
    if plan.nnodes > 1 and not plan.master_addr:
        out.append(("master_addr", _("is needed with --nnodes {n}: the address of node 0 that every machine "
                                     "reaches (e.g. 10.0.0.1)").format(n=plan.nnodes)))
    if plan.master_addr is not None and (not isinstance(plan.master_addr, str) or not plan.master_addr.strip()
                                         or any(c.isspace() for c in plan.master_addr)):
        out.append(("master_addr", _("must be a host name or address without spaces")))
    if plan.distributed == "fsdp" and world_size(plan) < 2:
        out.append(("distributed", _("fsdp shards the weights across processes: it needs --num-processes or "
                                     "--nnodes giving at least 2 processes")))
    return out


def fsdp_without_gpu(plan: Any, vram_bytes: int | None) -> str | None:
    """Why `distributed = fsdp` cannot run here (no GPU: accelerate shards a model only across GPUs), or None."""
    if plan.distributed != "fsdp" or vram_bytes is not None:
        return None
    return _("--distributed fsdp needs CUDA GPUs (accelerate shards a model only across GPUs) and none was "
             "found; on the CPU use --distributed ddp")


def torchrun_args(plan: Any) -> list[str]:
    """torchrun's arguments for this node: a standalone rendezvous on one machine, node 0's address otherwise."""
    if plan.nnodes <= 1:
        return ["--standalone", f"--nproc_per_node={plan.num_processes}"]
    return [f"--nnodes={plan.nnodes}", f"--node_rank={plan.node_rank}", f"--nproc_per_node={plan.num_processes}",
            f"--master_addr={plan.master_addr}", f"--master_port={plan.master_port}"]


def launched_alone(plan: Any) -> bool:
    """True when the run is one process, started without torchrun."""
    return world_size(plan) <= 1


def worker_command(run_dir: Path, plan: Any, *, resume: bool = False) -> list[str]:
    """The command line of this node's training process (torchrun for more than one process)."""
    tail = ["-m", "lora_tui.train", str(run_dir), *(["--resume"] if resume else [])]
    if launched_alone(plan):
        return [sys.executable, *tail]
    return [sys.executable, "-m", "torch.distributed.run", *torchrun_args(plan), *tail]


def node_commands(plan: Any, command_line: str) -> list[str]:
    """The `lora-tui train` command for every node of the run (`command_line` is node 0's, `--node-rank` left
    out or 0): the same command with each node's `--node-rank`."""
    if plan.nnodes <= 1:
        return [command_line]
    base = re.sub(r" --node-rank \d+(?=\s|$)", "", command_line)
    return [base if rank == 0 else f"{base} --node-rank {rank}" for rank in range(plan.nnodes)]


def compared_plan(plan_dict: dict[str, Any]) -> dict[str, Any]:
    """The plan settings every node must agree on."""
    return {k: v for k, v in plan_dict.items() if k not in PER_NODE}


def mismatch(reports: list[dict[str, Any]]) -> str | None:
    """What differs between the ranks' reports ({"rank", "node", "versions", "plan"}), as one message; None
    when every rank runs the same versions and plan. Every rank computes it from the same gathered list."""
    first = reports[0]
    for other in reports[1:]:
        where = _("rank {rank} (node {node})").format(rank=other["rank"], node=other["node"])
        for name, version in first["versions"].items():
            theirs = other["versions"].get(name)
            if theirs != version:
                return _("{where} runs {name} {theirs}, rank 0 runs {version}: install the same versions on "
                         "every machine").format(where=where, name=name, theirs=theirs, version=version)
        keys = sorted(set(first["plan"]) | set(other["plan"]))
        diff = [k for k in keys if first["plan"].get(k) != other["plan"].get(k)]
        if diff:
            shown = ", ".join(f"{k} = {other['plan'].get(k)!r} (rank 0: {first['plan'].get(k)!r})" for k in diff[:4])
            return _("{where} has a different plan: {shown}; start every node with the same settings "
                     "(only --node-rank differs)").format(where=where, shown=shown)
    return None


def log_tail(path: Path, lines: int = 5) -> list[str]:
    """The last `lines` non-empty lines of a log file (empty when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 16_384))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]
