"""`lora-tui sweep`: bad sweep files are one line naming the key (exit 2); the dry run lists the points, their
memory, and drops the one that cannot fit with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.cli import main


def _sweep(tmp_path: Path, text: str) -> str:
    path = tmp_path / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("text", "message"), [
    ('[plan]\nmodel = "demo"\n[grid]\nlora_rank = [8, 16]\n', "grid.lora_rank is not a setting"),
    ('[plan]\nlearn_rate = 1e-4\n[grid]\nlora_r = [8]\n', "plan.learn_rate is not a setting"),
    ('[grid]\nlora_r = []\n', "grid.lora_r is an empty list"),
    ('[grid]\nlora_r = [8, "sixteen"]\n', "grid.lora_r = 'sixteen' must be a whole number"),
    ('[grid]\nlora_r = 8\n', "grid.lora_r must be a list of values"),
    ('[plan]\nmax_steps = 2.5\n[grid]\nlora_r = [8]\n', "plan.max_steps = 2.5 must be a whole number"),
    ('[grid]\noutput = ["a", "b"]\n', "grid.output: every point has its own run directory"),
    ('[plan]\nmodel = "demo"\n', "[grid] is empty or missing"),
    ('[grids]\nlora_r = [8]\n', "unknown key(s) grids"),
    ('[grid]\nlora_r = [0, 8]\n', "point 01-lora_r0: settings: `lora_r` (--lora-r) must be a positive integer"),
])
def test_bad_sweep_file_is_one_line_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    text: str, message: str) -> None:
    assert main(["sweep", _sweep(tmp_path, text), "--dry-run", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_more_than_64_points_needs_yes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _sweep(tmp_path, "[grid]\nlora_r = [4, 8, 16, 32, 64]\nlearning_rate = "
                            + str([1e-5 * i for i in range(1, 14)]) + "\n")
    assert main(["sweep", path, "--dry-run"]) == 2
    assert "[grid] (lora_r, learning_rate) makes 65 points, more than 64; pass --yes" in capsys.readouterr().err


def test_dry_run_drops_the_point_that_cannot_fit_with_its_reason(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _sweep(tmp_path, '[plan]\nmodel = "demo"\nmax_steps = 2\nmax_seq_length = 2048\n'
                            "[grid]\nper_device_train_batch_size = [1, 4096]\n")
    assert main(["sweep", path, "--dry-run", "--vram-gb", "2", "--output", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"sweep {path}: 2 point(s) in {tmp_path / 'out'}"
    assert lines[1].split()[:2] == ["01-per_device_train_batch_size1", "per_device_train_batch_size=1"]
    assert "DROPPED" not in lines[1] and "(fits)" in lines[1]
    assert "DROPPED: cannot fit: needs about" in lines[2] and "the GPU has 1.9 GiB" in lines[2]
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
