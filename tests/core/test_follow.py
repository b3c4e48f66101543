"""The one run follower (monitor, `runs logs -f`, `train`): log lines, metrics records, status, bounded reads."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from lora_tui.core import run_files, runs
from lora_tui.core.follow import RunFollower, eta_seconds, format_duration, log_size
from lora_tui.core.run_files import MetricsRecord
from tests.helpers import FAKE_TRAINER

FAKE = FAKE_TRAINER


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    return run


def test_follower_keeps_the_log_bounded_and_carries_partial_lines(tmp_path: Path) -> None:
    run = _run(tmp_path)
    log = run / runs.LOG_FILE
    log.write_text("".join(f"line {i}\n" for i in range(20_000)) + "half", encoding="utf-8")
    follower = RunFollower(run, max_lines=5000)
    poll = follower.poll()
    assert len(poll.lines) == 5000 and poll.lines[-1] == "line 19999" and poll.lines[0] == "line 15000"
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(" done\n")
    assert follower.poll().lines == ["half done"]
    assert follower.poll().lines == []


def test_follower_skips_ahead_when_more_than_a_chunk_arrives(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / runs.LOG_FILE).write_text("".join(f"{i:06d}\n" for i in range(10_000)), encoding="utf-8")
    poll = RunFollower(run, max_chunk_bytes=7 * 100).poll()
    assert poll.skipped_lines and poll.lines[-1] == "009999" and len(poll.lines) <= 100


def test_every_line_follower_skips_nothing_and_reads_in_bounded_chunks(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / runs.LOG_FILE).write_text("".join(f"{i:06d}\n" for i in range(10_000)) + "last, unended",
                                     encoding="utf-8")
    follower = RunFollower(run, max_chunk_bytes=7 * 100, every_line=True)
    first, skipped = follower.read_log()
    assert not skipped and first == [f"{i:06d}" for i in range(100)]  # one chunk, from the start
    out = io.StringIO()
    assert follower.copy_log(out) == 9_900
    assert out.getvalue().splitlines() == [f"{i:06d}" for i in range(100, 10_000)]
    assert follower.copy_log(out, final=True) == 1 and out.getvalue().endswith("009999\nlast, unended\n")
    assert follower.copy_log(out, final=True) == 0


def test_a_line_longer_than_a_chunk_comes_out_in_pieces(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / runs.LOG_FILE).write_text("x" * 2500 + "\nok\n", encoding="utf-8")
    out = io.StringIO()
    RunFollower(run, max_chunk_bytes=1000, every_line=True).copy_log(out)
    assert out.getvalue().replace("\n", "") == "x" * 2500 + "ok" and out.getvalue().endswith("\nok\n")


def test_follower_starts_at_an_offset_and_starts_again_when_the_log_is_replaced(tmp_path: Path) -> None:
    run = _run(tmp_path)
    log = run / runs.LOG_FILE
    log.write_text("old run\n", encoding="utf-8")
    follower = RunFollower(run, every_line=True, log_offset=log_size(run))
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("resumed\r\n")
    assert follower.read_log() == (["resumed"], False)  # carriage returns dropped
    log.write_text("new\n", encoding="utf-8")  # shorter than what was read: a new file
    assert follower.read_log() == (["new"], False)
    assert log_size(tmp_path / "nowhere") == 0


def test_follower_reads_text_that_is_not_utf8(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / runs.LOG_FILE).write_bytes("é ok\n".encode() + b"\xff\xfe bad\n")
    assert RunFollower(run).poll().lines == ["é ok", "\ufffd\ufffd bad"]


def test_follower_returns_new_metrics_records_and_the_status(tmp_path: Path) -> None:
    run = _run(tmp_path)
    follower = RunFollower(run)
    empty = follower.poll()
    assert (empty.lines, empty.metrics, empty.status) == ([], [], None)
    with run_files.open_metrics(run) as fh:
        run_files.append_metrics(fh, MetricsRecord(step=1, loss=2.0))
        fh.write('{"step": 2, "loss": 1.')  # being written
    runs.write_status(run, runs.RunStatus(state="running", step=1, max_steps=4))
    poll = follower.poll()
    assert poll.metrics == [MetricsRecord(step=1, loss=2.0)]
    assert poll.status is not None and (poll.status.state, poll.status.step) == ("running", 1)
    with open(run / runs.METRICS_FILE, "a", encoding="utf-8") as fh:
        fh.write('9}\n')
    assert follower.poll().metrics == [MetricsRecord(step=2, loss=1.9)]


def test_follower_follows_the_fake_trainer(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with open(tmp_path / "out.log", "wb") as out:
        subprocess.run([sys.executable, str(FAKE), str(run), "--steps", "5", "--interval", "0"], stdout=out,
                       check=True)
    (tmp_path / "out.log").rename(run / runs.LOG_FILE)
    poll = RunFollower(run).poll()
    assert [m.step for m in poll.metrics] == [1, 2, 3, 4, 5] and poll.lines[-1] == "fake trainer: finished at step 5"
    assert poll.status is not None and poll.status.state == "finished" and poll.status.step == 5


@pytest.mark.parametrize("bad", [{"max_lines": 0}, {"max_chunk_bytes": -1}])
def test_follower_refuses_bounds_that_are_not_positive(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RunFollower(tmp_path, **bad)


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (-1, "-"), (float("nan"), "-"), (12.4, "12s"),
                                               (245, "4m05s"), (3720, "1h02m")])
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_eta_at_the_average_pace() -> None:
    assert eta_seconds(25, 100, 50.0) == 150.0
    assert eta_seconds(0, 100, 50.0) is None and eta_seconds(5, None, 10.0) is None
    assert eta_seconds(120, 100, 60.0) == 0.0
