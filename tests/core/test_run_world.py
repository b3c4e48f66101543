"""A run's world and every process's peak memory: typed in metrics.jsonl (old lines without it still read), read
back across resumes, and said in the lines the monitor and `runs show` print."""

from __future__ import annotations

import json
from pathlib import Path

from lora_tui.core import run_files, runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import MetricsRecord, RankMemory
from lora_tui.core.run_world import (
    World,
    last_ranks,
    node_lines,
    nodes_brief,
    read_ranks,
    world_line,
    world_of,
    world_shape,
)

GIB = 1024**3


def _gpus(nodes: int, per: int, base: float = 4.5) -> list[RankMemory]:
    return [RankMemory(rank=n * per + g, node=n, local_rank=g, device="cuda", peak_bytes=int((base + n + g / 10) * GIB),
                       reserved_bytes=6 * GIB, total_bytes=80 * GIB) for n in range(nodes) for g in range(per)]


def test_a_metrics_line_holds_every_ranks_memory_typed_and_without_nulls() -> None:
    ranks = [RankMemory(rank=0, node=0, device="cpu", peak_bytes=100), RankMemory(rank=1, node=1, device="cpu",
                                                                                 peak_bytes=120)]
    line = MetricsRecord(step=3, loss=2.0, ranks=ranks).to_dict()
    assert line["ranks"][1] == {"rank": 1, "node": 1, "local_rank": 0, "device": "cpu", "peak_bytes": 120}
    back = MetricsRecord.from_dict(json.loads(json.dumps(line)))
    assert back.ranks == ranks and isinstance(back.ranks[0], RankMemory)


def test_a_line_from_elsewhere_keeps_the_ranks_it_can_read() -> None:
    record = MetricsRecord.from_dict({"step": 2, "ranks": [{"rank": 1, "node": "one", "peak_bytes": 5, "new": 1},
                                                           "not a rank", 7]})
    assert record.ranks == [RankMemory(rank=1, node=0, peak_bytes=5)]  # the wrong-typed node keeps its default
    assert MetricsRecord.from_dict({"step": 2, "ranks": "all"}).ranks is None
    assert MetricsRecord.from_dict({"step": 2, "loss": 1.0}).ranks is None  # an older run's line


def test_the_latest_ranks_of_the_one_history_are_read(tmp_path: Path) -> None:
    assert read_ranks(tmp_path) is None  # no metrics at all
    first, second = _gpus(1, 2), _gpus(1, 2, base=6.0)
    with run_files.open_metrics(tmp_path) as fh:
        run_files.append_metrics(fh, MetricsRecord(step=1, loss=2.0, ranks=first))
        run_files.append_metrics(fh, MetricsRecord(step=2, loss=1.9))
        run_files.append_metrics(fh, MetricsRecord(step=3, loss=1.8, ranks=second))
    assert read_ranks(tmp_path) == second
    run_files.mark_superseded(tmp_path, 2)  # resumed from checkpoint-2: step 3's line belongs to a dropped attempt
    assert read_ranks(tmp_path) == first
    records, _ = run_files.read_metrics(tmp_path)
    assert last_ranks(records) == first and last_ranks([MetricsRecord(step=1)]) is None


def test_the_world_is_what_the_run_recorded_else_its_plan() -> None:
    plan = TrainingPlan(nnodes=2, num_processes=2, master_addr="10.0.0.1")
    assert world_of(runs.RunStatus(extra={"world_size": 4}), plan) == World(4, 2)
    assert world_of(None, plan) == World(4, 2)
    assert world_of(runs.RunStatus(), None, recorded=2) == World(2, 1)
    assert world_of(runs.RunStatus(extra={"world_size": "4"}), None) is None  # nothing usable is known
    assert world_shape(World(4, 2)) == "4 (2 nodes x 2)" and world_shape(World(2, 1)) == "2 (1 node x 2)"
    assert world_line(World(4, 2)) == "world size 4 (2 nodes x 2)"
    assert world_shape(World(1, 1)) == "1" and world_line(World(1, 1)) is None and world_line(None) is None
    sharded = world_of(None, TrainingPlan(num_processes=2, distributed="fsdp"))
    assert sharded == World(2, 1, sharded=True)
    assert world_line(sharded) == "world size 2 (1 node x 2), weights sharded (FSDP)"


def test_each_machine_and_each_gpu_in_a_line() -> None:
    assert node_lines(_gpus(2, 2)) == [
        "node 0: 9.1 GiB peak allocated on 2 GPUs (GPU0 4.5/80.0 GiB, GPU1 4.6/80.0 GiB)",
        "node 1: 11.1 GiB peak allocated on 2 GPUs (GPU0 5.5/80.0 GiB, GPU1 5.6/80.0 GiB)"]
    assert nodes_brief(_gpus(2, 2)) == "peak allocated by node: node 0 9.1 GiB, node 1 11.1 GiB"
    cpu = [RankMemory(rank=1, node=1, device="cpu", peak_bytes=200 * 1024**2),
           RankMemory(rank=0, node=0, device="cpu", peak_bytes=190 * 1024**2), RankMemory(rank=2, node=1)]
    assert node_lines(cpu) == ["node 0: 190.0 MiB peak resident-set growth of 1 process on the CPU (rank 0 190.0 MiB)",
                               "node 1: 200.0 MiB peak resident-set growth of 1 process on the CPU (rank 1 200.0 MiB)"]
    assert nodes_brief(cpu) == "peak resident-set growth by node: node 0 190.0 MiB, node 1 200.0 MiB"
    assert node_lines(None) == [] and nodes_brief([RankMemory()]) is None  # nothing measured: nothing said
