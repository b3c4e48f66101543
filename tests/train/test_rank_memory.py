"""Every rank's peak memory, gathered at the logging steps of a run of several processes: a one-process gloo group
stands in for the world (the two-machine run in test_distributed.py gathers it from two); no model is loaded."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import transformers

from lora_tui.core import run_files
from lora_tui.core.run_files import RankMemory


@pytest.fixture
def group(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A gloo process group of this one process, as node 1's second process (GROUP_RANK, LOCAL_RANK)."""
    import torch.distributed as dist

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GROUP_RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_gather_reads_each_ranks_peak_as_the_probe_measures_it(group: None) -> None:
    from lora_tui.train.callbacks import gather_memory

    cpu = {"device": "cpu", "peak_rss_growth_bytes": 190 * 2**20, "rss_before_bytes": 400 * 2**20}
    assert gather_memory(lambda: cpu) == [RankMemory(rank=0, node=1, local_rank=1, device="cpu",
                                                     peak_bytes=190 * 2**20)]
    assert gather_memory(lambda: None) == [RankMemory(rank=0, node=1, local_rank=1)]  # nothing measured yet


def test_rank_0_writes_the_ranks_where_a_peak_changed(group: None, tmp_path: Path) -> None:
    from lora_tui.train.callbacks import RunCallback, StopFlag

    peaks = iter([100, 100, 120, 120])
    measured: dict[str, Any] = {}

    def probe() -> dict[str, Any]:
        measured["last"] = next(peaks)
        return {"device": "cpu", "peak_rss_growth_bytes": measured["last"]}

    callback = RunCallback(tmp_path, StopFlag(), is_main=True, world_size=2, effective_batch=2, memory=probe)
    for step in range(1, 5):
        state = transformers.TrainerState(global_step=step, max_steps=4, epoch=step / 4)
        callback.on_log(None, state, transformers.TrainerControl(), logs={"loss": 2.0, "learning_rate": 1e-4})
    state = transformers.TrainerState(global_step=4, max_steps=4, epoch=1.0)
    callback.on_log(None, state, transformers.TrainerControl(), logs={"eval_loss": 2.1})
    callback.close()
    records, _ = run_files.read_metrics(tmp_path)
    written = [[r.peak_bytes for r in record.ranks] if record.ranks else None for record in records]
    assert written == [[100], None, [120], None, None]  # the eval line gathers nothing
    assert callback.ranks is not None and callback.ranks[0].peak_bytes == 120


def test_one_process_gathers_nothing(tmp_path: Path) -> None:
    from lora_tui.train.callbacks import RunCallback, StopFlag

    def probe() -> dict[str, Any]:
        raise AssertionError("a run of one process needs no gathering")

    callback = RunCallback(tmp_path, StopFlag(), is_main=True, world_size=1, effective_batch=2, memory=probe)
    callback.on_log(None, transformers.TrainerState(global_step=1, max_steps=4), transformers.TrainerControl(),
                    logs={"loss": 2.0})
    callback.close()
    records, _ = run_files.read_metrics(tmp_path)
    assert [r.ranks for r in records] == [None] and callback.ranks is None
