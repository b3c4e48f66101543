"""The typed run files: metrics.jsonl records, launch.json, training_info.json; round trips and tolerant reads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lora_tui.core import adapters, run_files, runs
from lora_tui.core.run_files import LaunchInfo, MemoryCheck, MetricsRecord, Timings, TrainingInfo
from tests.helpers import FAKE_TRAINER

FAKE = FAKE_TRAINER


def _lines(path: Path, *objects: object) -> None:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")


# ---- metrics.jsonl ------------------------------------------------------------------------------------


def test_metrics_record_round_trip_keeps_unknown_keys_and_leaves_out_what_was_not_measured() -> None:
    line = {"step": 7, "epoch": 0.35, "loss": 1.25, "learning_rate": 5e-5, "grad_norm": 0.9, "tokens_seen": 4096,
            "tokens_per_second": 812.5, "elapsed": 3.2, "gpu_mem_allocated": 2**30, "from_a_newer_version": [1]}
    record = MetricsRecord.from_dict(line)
    assert (record.step, record.loss, record.tokens_seen, record.gpu_mem_allocated) == (7, 1.25, 4096, 2**30)
    assert record.eval_loss is None and record.extra == {"from_a_newer_version": [1]}
    assert record.to_dict() == line  # nothing invented (no nulls), nothing lost
    assert MetricsRecord(step=3, eval_loss=2.0).to_dict() == {"step": 3, "eval_loss": 2.0}


@pytest.mark.parametrize(("line", "expected"), [
    ({"step": "5", "loss": "2.0", "epoch": True}, {"step": 0, "loss": None, "epoch": None}),
    ({"step": 5.0, "loss": 2, "grad_norm": [1.0]}, {"step": 0, "loss": 2.0, "grad_norm": None}),
    ({"step": True, "eval_loss": {"v": 1}, "tokens_seen": 1.5}, {"step": 0, "eval_loss": None, "tokens_seen": None}),
    ({"step": 2, "loss": None, "learning_rate": 10**400}, {"step": 2, "loss": None, "learning_rate": None}),
])
def test_metrics_fields_of_the_wrong_type_keep_their_defaults(line: dict, expected: dict) -> None:
    record = MetricsRecord.from_dict(line)
    assert {k: getattr(record, k) for k in expected} == expected
    assert isinstance(record.loss, (float, type(None)))  # an int loss reads as a float


def test_read_metrics_leaves_partial_line(tmp_path: Path) -> None:
    path = tmp_path / runs.METRICS_FILE
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.9}\n{"step": 3, "lo')
    records, offset = run_files.read_metrics(tmp_path)
    assert [r.step for r in records] == [1, 2] and [r.loss for r in records] == [2.0, 1.9]
    with open(path, "a") as fh:
        fh.write('ss": 1.8}\n')
    more, offset2 = run_files.read_metrics(tmp_path, offset)
    assert more == [MetricsRecord(step=3, loss=1.8)] and offset2 == path.stat().st_size


def test_read_metrics_skips_lines_that_are_no_record(tmp_path: Path) -> None:
    path = tmp_path / runs.METRICS_FILE
    path.write_bytes(b'[1, 2]\nnot json\n\xff\xfe\n' + b"[" * 100_000 + b'\n{"step": 4, "loss": NaN}\n')
    records, offset = run_files.read_metrics(tmp_path)
    assert [r.step for r in records] == [4] and math.isnan(records[0].loss or 0.0)  # a diverged run's NaN is kept
    assert offset == path.stat().st_size
    assert run_files.read_metrics(tmp_path / "nowhere") == ([], 0)


def test_appended_records_are_read_back_equal(tmp_path: Path) -> None:
    written = [MetricsRecord(step=i, loss=3.0 - i / 10, learning_rate=1e-4, extra={"note": "x"}) for i in (1, 2)]
    with run_files.open_metrics(tmp_path) as fh:
        for record in written:
            run_files.append_metrics(fh, record)
    assert run_files.read_metrics(tmp_path)[0] == written


def test_finite_leaves_out_missing_and_non_finite_values() -> None:
    assert run_files.finite([1, None, 2.5, math.nan, math.inf, -0.5]) == [1.0, 2.5, -0.5]


def test_best_eval_is_the_lowest_finite_eval_loss_and_its_step() -> None:
    records = [MetricsRecord(step=10, loss=2.0), MetricsRecord(step=20, eval_loss=1.8),
               MetricsRecord(step=30, eval_loss=math.nan), MetricsRecord(step=40, eval_loss=1.5),
               MetricsRecord(step=50, eval_loss=1.5), MetricsRecord(step=60, eval_loss=1.7)]
    assert run_files.best_eval(records) == (40, 1.5)
    assert run_files.best_eval([MetricsRecord(step=5, loss=1.0)]) is None


# ---- launch.json and training_info.json --------------------------------------------------------------


def test_launch_info_round_trip(tmp_path: Path) -> None:
    launch = LaunchInfo(data_report={"examples": 12, "shape": "messages"}, memory_estimate={"total_bytes": 5e9},
                        mode="resume", auto_oom_retry=2, reasons={"lora_r": "24 GB row"},
                        command_line="lora-tui train --lora-r 16")
    run_files.write_launch_info(tmp_path, launch)
    assert json.loads((tmp_path / runs.LAUNCH_FILE).read_text())["auto_oom_retry"] == 2
    assert run_files.read_launch_info(tmp_path) == launch


def test_launch_info_tolerates_a_file_from_elsewhere(tmp_path: Path) -> None:
    _lines(tmp_path / runs.LAUNCH_FILE, {"mode": 3, "auto_oom_retry": "2", "reasons": None, "future": {"a": 1}})
    launch = run_files.read_launch_info(tmp_path)
    assert launch == LaunchInfo(extra={"future": {"a": 1}})
    assert launch.to_dict()["future"] == {"a": 1}  # written back where it was


def _full_info() -> TrainingInfo:
    return TrainingInfo(state="finished", settings={"lora_r": {"value": 8, "source": "recommended"}},
                        effective_batch_size=16, precision="bf16", assistant_only_loss=True, world_size=1,
                        timings=Timings(started_at=100.0, ended_at=160.5, wall_seconds=60.5,
                                        train_loop_seconds=55.0),
                        steps=30, max_steps=30, tokens_seen=12_345, first_loss=2.5, final_loss=1.25, best_loss=1.2,
                        memory=MemoryCheck(estimate={"total_bytes": 4_000}, measured={"peak_allocated_bytes": 3_000},
                                           measured_over_estimate=0.75),
                        attempts=[{"settings": {"lora_r": 8}, "outcome": "finished"}])


def test_training_info_round_trip_with_nested_parts(tmp_path: Path) -> None:
    info = _full_info()
    run_files.write_training_info(tmp_path, info)
    raw = json.loads((tmp_path / runs.INFO_FILE).read_text())
    assert raw["timings"]["wall_seconds"] == 60.5 and raw["memory"]["measured_over_estimate"] == 0.75
    assert raw["settings"]["lora_r"] == {"value": 8, "source": "recommended"} and raw["final_eval_loss"] is None
    assert run_files.read_training_info(tmp_path) == info


def test_training_info_fields_of_the_wrong_type_keep_their_defaults(tmp_path: Path) -> None:
    _lines(tmp_path / runs.INFO_FILE, {"final_loss": "1.0", "steps": 2.5, "timings": [60], "memory": {"estimate": 5},
                                       "best_loss": 1, "state": None, "versions": {"peft": "0.17"}, "secret": 1})
    info = run_files.read_training_info(tmp_path)
    assert info is not None
    assert (info.final_loss, info.steps, info.timings, info.best_loss, info.state) == (None, None, None, 1.0, None)
    assert info.memory == MemoryCheck() and info.versions == {"peft": "0.17"} and info.extra == {"secret": 1}


@pytest.mark.parametrize("content", [b'{"final_loss": 1.', b"[1, 2]", b"\xff", b"", b"[" * 100_000, b"null"],
                         ids=["cut-short", "a-list", "not-utf8", "empty", "nested-too-deep", "null"])
def test_a_damaged_training_info_reads_as_none(tmp_path: Path, content: bytes) -> None:
    (tmp_path / runs.INFO_FILE).write_bytes(content)
    (tmp_path / runs.LAUNCH_FILE).write_bytes(content)
    assert run_files.read_training_info(tmp_path) is None and run_files.read_launch_info(tmp_path) is None
    assert run_files.read_training_info(tmp_path / "missing") is None


def test_adapters_show_reports_only_known_fields_the_file_records() -> None:
    assert set(adapters._TRAINING_KEYS) <= set(TrainingInfo.__dataclass_fields__)


# ---- the fake trainer writes what the readers read ---------------------------------------------------


def test_fake_trainer_writes_records_the_readers_read(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    subprocess.run([sys.executable, str(FAKE), str(run_dir), "--steps", "6", "--interval", "0", "--eval-every", "3"],
                   check=True, stdout=subprocess.DEVNULL)
    records, _ = run_files.read_metrics(run_dir)
    assert [r.step for r in records] == [1, 2, 3, 4, 5, 6]
    losses = [r.loss for r in records]
    assert all(isinstance(v, float) for v in losses) and losses == sorted(losses, reverse=True)  # type: ignore
    assert [r.step for r in records if r.eval_loss is not None] == [3, 6]
    assert all(r.extra == {} for r in records)  # every key it writes is a field
    info = run_files.read_training_info(run_dir)
    assert info is not None and (info.state, info.steps, info.max_steps) == ("finished", 6, 6)
    assert info.final_loss == losses[-1] and info.extra == {"fake": True}
    assert adapters.final_loss(run_dir) == losses[-1]


def test_metrics_of_attempts_discarded_by_resumes_are_superseded(tmp_path: Path) -> None:
    """Four resumes from checkpoint-5 after reaching step 10: readers see steps 1-10 once."""
    from lora_tui.core.follow import RunFollower

    follower = RunFollower(tmp_path)
    seen: list[run_files.MetricsRecord] = []
    with run_files.open_metrics(tmp_path) as fh:
        for step in range(1, 11):
            run_files.append_metrics(fh, run_files.MetricsRecord(step=step, loss=10.0 - step))
    seen = run_files.one_history([*seen, *follower.read_metrics()])
    for attempt in range(4):
        with open(tmp_path / runs.METRICS_FILE, "a", encoding="utf-8") as fh:
            fh.write('{"step": 11, "loss": 0.')  # the last line of a killed attempt, cut short
        run_files.mark_superseded(tmp_path, 5, "checkpoints/checkpoint-5")
        with run_files.open_metrics(tmp_path) as fh:
            for step in range(6, 11):
                run_files.append_metrics(fh, run_files.MetricsRecord(step=step, loss=float(attempt)))
        seen = run_files.one_history([*seen, *follower.read_metrics()])  # the monitor's way
    records, _ = run_files.read_metrics(tmp_path)
    for history in (records, seen):
        assert [r.step for r in history] == list(range(1, 11))
        assert [r.loss for r in history][5:] == [3.0] * 5  # the last attempt's
    marker = json.loads((tmp_path / runs.METRICS_FILE).read_text().splitlines()[-6])
    assert marker == {"step": 0, "superseded_after": 5, "resumed_from": "checkpoints/checkpoint-5"}
