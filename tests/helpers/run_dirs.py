"""A run directory as the trainer leaves it, written from a recorded metric stream (no training)."""

from __future__ import annotations

from pathlib import Path

from lora_tui.core import run_files, runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import MetricsRecord


def recorded_run(run_dir: Path, losses: list[float], *, evals: dict[int, float] | None = None,
                 state: str = "finished", max_steps: int | None = None, **status: object) -> Path:
    """A run directory as the trainer leaves it: run.toml, metrics.jsonl, run.log, status.json."""
    run_dir.mkdir(parents=True)
    plan = TrainingPlan(output=str(run_dir), lora_r=16, lora_alpha=32, learning_rate=5e-5)
    (run_dir / runs.RUN_FILE).write_text(plan.to_toml(), encoding="utf-8")
    with run_files.open_metrics(run_dir) as fh:
        for i, loss in enumerate(losses, start=1):
            run_files.append_metrics(fh, MetricsRecord(step=i, epoch=i / len(losses), loss=loss, learning_rate=5e-5,
                                                       grad_norm=1.0, eval_loss=(evals or {}).get(i)))
    (run_dir / runs.LOG_FILE).write_text("".join(f"step {i}\n" for i in range(1, len(losses) + 1)))
    runs.write_status(run_dir, runs.RunStatus(state=state, started_at=1000.0, ended_at=1100.0, step=len(losses),
                                              max_steps=max_steps or len(losses), **status))  # type: ignore[arg-type]
    return run_dir
