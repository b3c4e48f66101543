"""Other nodes' logs in node 0's run directory: a node other than 0 may start first on shared storage and write
RUN/node-R.log before node 0 takes the directory; node 0 takes it as new, and every launch keeps those logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.core import launcher, output_dir, run_lock, runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.errors import UserError

NODE_LOG = "node-1.log"


def _plan(output: Path) -> TrainingPlan:
    return TrainingPlan(output=str(output), nnodes=3, master_addr="10.0.0.1")


def _with_node_logs(path: Path) -> Path:
    path.mkdir()
    (path / NODE_LOG).write_text("node 1 started first\n")
    (path / "node-2.log").write_text("node 2 too\n")
    return path


def test_node_0_takes_a_directory_holding_only_other_nodes_logs_and_keeps_them(tmp_path: Path) -> None:
    out = _with_node_logs(tmp_path / "run")
    assert runs.check_output_dir(out) == "new"
    run_dir = launcher.prepare_run_dir(launcher.ResolvedRun(plan=_plan(out), sources={}, mode="new"))
    try:
        assert (run_dir / runs.RUN_FILE).is_file() and runs.read_status(run_dir).state == "starting"  # type: ignore[union-attr]
        assert (run_dir / NODE_LOG).read_text() == "node 1 started first\n"
        assert (run_dir / "node-2.log").read_text() == "node 2 too\n"
    finally:
        lock = run_lock.held(run_dir)
        if lock is not None:
            lock.release()


@pytest.mark.parametrize("other", ["notes.txt", "node-0.log", "node-01.log", "node-x.log"])
def test_anything_else_beside_the_node_logs_is_still_content(tmp_path: Path, other: str) -> None:
    out = _with_node_logs(tmp_path / "run")
    (out / other).write_text("mine")
    with pytest.raises(UserError, match="directory is not empty"):
        runs.check_output_dir(out)


def test_overwrite_replaces_a_run_but_leaves_the_node_logs_in_place(tmp_path: Path) -> None:
    out = _with_node_logs(tmp_path / "run")
    (out / runs.RUN_FILE).write_text("[plan]\n")
    (out / runs.STATUS_FILE).write_text('{"state": "finished"}')
    (out / runs.LOG_FILE).write_text("node 0's old log\n")
    assert output_dir.replace_refusal(out, kind="run") is None  # node logs are lora-tui's own
    assert runs.check_output_dir(out, overwrite=True) == "overwrite"
    moved = output_dir.move_to_trash(out)
    assert moved is not None and sorted(p.name for p in moved.iterdir()) == [runs.LOG_FILE, runs.RUN_FILE,
                                                                           runs.STATUS_FILE]
    assert (out / NODE_LOG).read_text() == "node 1 started first\n"  # node 1 may be writing it right now
    (out / NODE_LOG).write_text("node 1 started first\nand goes on\n")
    (out / runs.RUN_FILE).write_text("[plan]\nnew = true\n")  # the failed launch's file, then put back
    output_dir.restore_from_trash(out, moved)
    assert (out / runs.RUN_FILE).read_text() == "[plan]\n"
    assert (out / NODE_LOG).read_text() == "node 1 started first\nand goes on\n"
