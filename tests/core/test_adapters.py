"""lora_tui.core.adapters: discovery, reading and damage detection, on hand-written adapter directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_tui.core import adapters as ca
from lora_tui.core import runs
from lora_tui.errors import UserError
from tests.helpers.adapter_fakes import fake_adapter, write_safetensors


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    fake_adapter(root / "finished-run", losses=[2.5, 1.9, 1.25])
    fake_adapter(root / "stopped-run", state="stopped", losses=[2.5, 2.2], checkpoints=2)
    failed = fake_adapter(root / "failed-run", state="failed", weights=False, checkpoints=1)
    (failed / "adapter_config.json").unlink()
    partial = fake_adapter(root / "partial-run", r=4)
    weights = partial / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated copy
    fake_adapter(root / "group" / "guide-alpha", alpha_key="alpha", alpha=32, state=None)
    return root


def by_name(found: list[ca.AdapterInfo]) -> dict[str, ca.AdapterInfo]:
    return {a.name: a for a in found}


def test_find_adapters_states_and_values(runs_dir: Path) -> None:
    found = by_name(ca.find_adapters(runs_dir))
    assert set(found) == {"finished-run", "stopped-run", "failed-run", "partial-run", "group/guide-alpha"}
    fin = found["finished-run"]
    assert (fin.state, fin.has_adapter, fin.r, fin.lora_alpha, fin.scaling) == ("finished", True, 8, 16.0, 2.0)
    assert fin.target_modules == ["q_proj", "v_proj"] and fin.final_loss == 1.25 and fin.problems == []
    # 2 layers x (q: 8x256 + 256x8, v: 8x256 + 64x8) fp32 + header
    assert fin.adapter_bytes > 4 * 2 * (8 * 256 * 2 + 8 * 256 + 64 * 8)
    assert (found["stopped-run"].state, found["stopped-run"].checkpoints) == ("stopped", 2)
    assert found["stopped-run"].final_loss == 2.2
    failed = found["failed-run"]
    assert (failed.state, failed.has_adapter, failed.checkpoints) == ("failed", False, 1)
    assert "no adapter_config.json" in failed.problems[0]
    partial = found["partial-run"]
    assert (partial.state, partial.has_adapter) == ("partial", False)
    assert any("truncated" in p for p in partial.problems)


def test_wrong_alpha_key_is_reported_with_peft_default(runs_dir: Path) -> None:
    info = by_name(ca.find_adapters(runs_dir))["group/guide-alpha"]
    assert info.state == "saved" and info.has_adapter
    assert info.lora_alpha == ca.PEFT_DEFAULT_ALPHA and info.scaling == 1.0
    assert "`alpha`" in info.problems[0] and "lora_alpha" in info.problems[0]


def test_final_loss_prefers_training_info(tmp_path: Path) -> None:
    run = fake_adapter(tmp_path / "r", losses=[3.0, 2.0])
    assert ca.final_loss(run) == 2.0
    (run / runs.INFO_FILE).write_text(json.dumps({"results": {"train_loss": 1.5}}), encoding="utf-8")
    assert ca.final_loss(run) == 2.0  # a key nothing writes is not read: the metrics say
    (run / runs.INFO_FILE).write_text(json.dumps({"final_loss": 1.5}), encoding="utf-8")
    assert ca.final_loss(run) == 1.5


def test_adapter_dir_from_status(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fake_adapter(run / "final", state=None)
    runs.write_status(run, runs.RunStatus(state="finished", adapter_dir="final"))
    [info] = ca.find_adapters(tmp_path)
    assert info.path == str(run / "final") and info.run_dir == str(run) and info.state == "finished"


@pytest.mark.parametrize(
    ("cut", "message"),
    [(4, r"truncated \(4 bytes\)"), (20, "truncated or not a safetensors"), (-1, "the file has")],
)
def test_truncated_safetensors(tmp_path: Path, cut: int, message: str) -> None:
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"a": [4, 4]})
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(UserError, match=message):
        ca.read_safetensors_header(path)


def test_an_adapter_saved_without_weights_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "adapter_model.safetensors"
    save_file({}, str(path), metadata={"format": "pt"})
    with pytest.raises(UserError, match=r"adapter_model.safetensors: holds no weights \(saved without them\); use "
                                        "one of the run's checkpoints or train it again"):
        ca.read_safetensors_header(path)


def test_param_stats(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"a": [4, 6], "b": [10, 3], "n": [5]})
    assert ca.safetensors_param_stats([path]) == (24 + 30 + 5, 30)


def test_read_config_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such adapter directory"):
        ca.read_adapter_config(tmp_path / "missing")
    run = fake_adapter(tmp_path / "r")
    (run / "adapter_config.json").unlink()
    with pytest.raises(UserError, match="the weights are there"):
        ca.read_adapter_config(run)
    (run / "adapter_config.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(UserError, match="not valid JSON"):
        ca.read_adapter_config(run)


def test_describe_adapter_files_and_training(tmp_path: Path) -> None:
    run = fake_adapter(tmp_path / "r", losses=[2.0, 1.0], checkpoints=1)
    (run / runs.INFO_FILE).write_text(json.dumps({"final_loss": 1.0, "steps": 2, "secret": 1}), encoding="utf-8")
    details = ca.describe_adapter(run)
    files = dict(details.files)
    assert files["adapter_config.json"] == (run / "adapter_config.json").stat().st_size
    assert "checkpoints/" in files and details.training == {"final_loss": 1.0, "steps": 2}
    assert details.info.final_loss == 1.0
    assert json.loads(json.dumps(details.to_dict()))["info"]["r"] == 8


def test_describe_checkpoint_belongs_to_run(tmp_path: Path) -> None:
    run = fake_adapter(tmp_path / "r", state="stopped", checkpoints=1)
    ckpt = run / "checkpoints" / "checkpoint-1"
    (ckpt / "adapter_config.json").write_text((run / "adapter_config.json").read_text(), encoding="utf-8")
    details = ca.describe_adapter(ckpt)
    assert details.info.run_dir == str(run) and details.info.state == "stopped"


def test_merge_note_says_which_step_the_adapter_of_an_unfinished_run_is_from(tmp_path: Path) -> None:
    from lora_tui.core import runs
    from lora_tui.core.adapters import merge_note

    run = fake_adapter(tmp_path / "run", checkpoints=2)
    assert merge_note(run) is None  # finished
    runs.write_status(run, runs.RunStatus(state="stopped", step=6, max_steps=20, adapter_step=6))
    assert merge_note(run) == f"the run {run} is stopped: this adapter is from step 6 of 20"
    runs.write_status(run, runs.RunStatus(state="running", pid=999_999_999, step=9, max_steps=20, adapter_step=6))
    assert merge_note(run) == f"the run {run} is lost: this adapter is from step 6 of 20"  # its pid is gone
    assert merge_note(run / runs.CHECKPOINTS_DIR / "checkpoint-2") == \
        f"the run {run} is lost: this adapter is from step 2 of 20"
    assert merge_note(tmp_path / "no-run") is None
