"""With an evaluation split the run keeps its best checkpoint (lowest eval loss) as the final adapter, and says
which step it is; --keep last keeps the last step."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.cli import main
from lora_tui.core import run_files

pytestmark = pytest.mark.slow
SMALL = ["--model", "demo", "--batch-size", "4", "--gradient-accumulation-steps", "1", "--max-seq-length", "128",
         "--max-steps", "12", "--save-steps", "3", "--eval-split", "0.1", "--learning-rate", "5e-2"]


@pytest.mark.parametrize("keep", ["best", "last"])
def test_the_final_adapter_is_the_kept_checkpoint(demo_model: Path, tmp_path: Path, keep: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / keep
    assert main(["train", *SMALL, "--keep", keep, "--output", str(out)]) == 0
    records, _ = run_files.read_metrics(out)
    evals = {r.step: r.eval_loss for r in records if r.eval_loss is not None}
    assert sorted(evals) == [3, 6, 9, 12]  # one evaluation at every save
    info = run_files.read_training_info(out)
    assert info is not None and info.adapter_kept == keep
    printed = capsys.readouterr().out
    if keep == "best":
        best_step = min(evals, key=lambda s: evals[s] or 0.0)
        assert info.adapter_step == best_step and info.adapter_eval_loss == pytest.approx(evals[best_step])
        assert f"the lowest eval loss {evals[best_step]:.4f}" in printed
        assert (out / "checkpoints" / f"checkpoint-{best_step}").is_dir()  # kept through rotation
    else:
        assert info.adapter_step == 12 and info.adapter_eval_loss is None
    assert main(["runs", "show", str(out)]) == 0
    assert f"adapter: step {info.adapter_step}" in capsys.readouterr().out
