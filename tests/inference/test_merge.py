"""Merging: the memory plan, equal logits after the merge, and the output directory rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lora_tui.core.progress import Cancelled, Progress
from lora_tui.errors import UserError
from lora_tui.inference import merge as merge_mod
from lora_tui.inference.merge_plan import CUDA_CONTEXT_BYTES, plan_merge
from lora_tui.inference.session import AdapterSession
from tests.helpers.adapter_fixtures import probe_ids

GIB = 1024**3


@pytest.mark.parametrize(
    ("device", "gpu_free", "want_device", "reason"),
    [
        ("auto", 24 * GIB, "cuda", "it fits"),
        ("auto", 2 * GIB, "cpu", "the GPU has 2.00 GiB free but the merge needs"),
        ("auto", None, "cpu", "no CUDA GPU"),
        ("cpu", 24 * GIB, "cpu", "requested"),
        ("cuda", 24 * GIB, "cuda", "requested"),
    ],
)
def test_plan_merge_device_choice(device: str, gpu_free: int | None, want_device: str, reason: str) -> None:
    # a 1B-parameter model in bf16: 2 GB of weights; largest matrix 262144 x 1152 (Gemma 3 1B's embedding)
    plan = plan_merge(base_params=1_000_000_000, largest_weight_params=262_144 * 1152, adapter_params=13_000_000,
                      dtype="bf16", device=device, gpu_free_bytes=gpu_free, ram_available_bytes=64 * GIB)
    assert plan.device == want_device and reason in plan.reason
    assert plan.weights_bytes == 2_000_000_000 and plan.adapter_bytes == 52_000_000
    largest = 262_144 * 1152 * (4 + 2)
    assert plan.working_bytes == largest + 100_000_000 + (CUDA_CONTEXT_BYTES if want_device == "cuda" else 0)
    assert plan.total_bytes == plan.weights_bytes + plan.adapter_bytes + plan.working_bytes


def test_plan_merge_refusals() -> None:
    kwargs = {"base_params": 8_000_000_000, "largest_weight_params": 10**8, "adapter_params": 10**7}
    with pytest.raises(UserError, match="--device cuda: no CUDA GPU"):
        plan_merge(**kwargs, device="cuda")
    with pytest.raises(UserError, match=r"--device cuda: the merge needs 16\.\d+ GiB, the GPU has 8.00 GiB"):
        plan_merge(**kwargs, device="cuda", gpu_free_bytes=8 * GIB)
    with pytest.raises(UserError, match="of RAM, 4.00 GiB is available"):
        plan_merge(**kwargs, device="cpu", ram_available_bytes=4 * GIB)
    with pytest.raises(UserError, match="--dtype int8"):
        plan_merge(**kwargs, dtype="int8")


def test_merged_logits_equal_base_plus_adapter(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    adapter = adapter_pair[1]
    stages: list[str] = []
    result = merge_mod.merge_adapter(adapter, tmp_path / "merged", dtype="fp32", device="cpu",
                                     progress=lambda event: stages.append(event.stage))
    out = Path(result.output)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert result.plan.device == "cpu" and "merging on the CPU (requested)" in stages[0]
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    session = AdapterSession.for_adapters([adapter], device="cpu")
    ids = probe_ids(merged.config.vocab_size)
    with torch.inference_mode():
        got = merged(input_ids=ids).logits
    torch.testing.assert_close(got, session.logits(ids, "code"), rtol=0, atol=2e-5)
    assert (got - session.logits(ids, None)).abs().max() > 1e-3
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == AutoTokenizer.from_pretrained(adapter).chat_template
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # no temporary directory left behind


def test_merge_refuses_non_empty_output(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=r"--output .*out: directory is not empty.*--overwrite"):
        merge_mod.merge_adapter(adapter_pair[0], out, dtype="fp32", device="cpu")
    with pytest.raises(UserError, match="--overwrite refused: it is not a merged model written by lora-tui"):
        merge_mod.merge_adapter(adapter_pair[0], out, dtype="fp32", device="cpu", overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(UserError, match="is the adapter or the base model itself"):
        merge_mod.merge_adapter(adapter_pair[0], adapter_pair[0], dtype="fp32", device="cpu", overwrite=True)
    merged = tmp_path / "merged"
    merge_mod.merge_adapter(adapter_pair[0], merged, dtype="fp32", device="cpu")
    (merged / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=r"it holds files lora-tui did not write \(keep.txt\)"):
        merge_mod.merge_adapter(adapter_pair[0], merged, dtype="bf16", device="cpu", overwrite=True)
    (merged / "keep.txt").unlink()
    result = merge_mod.merge_adapter(adapter_pair[0], merged, dtype="bf16", device="cpu", overwrite=True)
    assert (merged / "model.safetensors").is_file() and result.plan.dtype == "bf16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged", "out"]  # no hidden copy of the old model


def test_merge_overwrite_never_deletes_the_adapter_or_its_sibling_runs(adapter_pair: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    parent = adapter_pair[0].parent  # holds the adapter and the other run
    before = sorted(p.name for p in parent.iterdir())
    with pytest.raises(UserError, match=r"--overwrite refused: it contains the adapter being merged"):
        merge_mod.merge_adapter(adapter_pair[0], parent, dtype="fp32", device="cpu", overwrite=True)
    assert sorted(p.name for p in parent.iterdir()) == before


def test_merge_checks_the_disk_space_first(adapter_pair: tuple[Path, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 0, 1000))
    with pytest.raises(UserError, match=r"--output .*merged: the merged model needs about .*, its disk has 1000 B "
                                        "free; free space or choose another disk"):
        merge_mod.merge_adapter(adapter_pair[0], tmp_path / "merged", dtype="fp32", device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_saving_the_merge_is_one_line_and_leaves_nothing(adapter_pair: tuple[Path, Path],
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers.modeling_utils as modeling

    def full_disk(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"partial")
        raise RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                           '"No space left on device" })')

    monkeypatch.setattr(modeling, "safe_save_file", full_disk)
    old = tmp_path / "merged"
    with pytest.raises(UserError, match=r"--output .*merged: no space left on device while writing the merged "
                                        "model; the partial copy was removed, nothing was replaced"):
        merge_mod.merge_adapter(adapter_pair[0], old, dtype="fp32", device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_merge_output_that_cannot_be_created_is_a_user_error(adapter_pair: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    out = tmp_path / "a-file" / "merged"
    with pytest.raises(UserError, match=r"--output .*a-file/merged: cannot create it \("):
        merge_mod.merge_adapter(adapter_pair[0], out, dtype="fp32", device="cpu")
    assert (tmp_path / "a-file").read_text() == "not a directory"


def test_interrupted_merge_leaves_nothing_complete(adapter_pair: tuple[Path, Path], tmp_path: Path) -> None:
    def interrupt(event: Progress) -> None:
        if event.stage.startswith("saving") and not event.final:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge_mod.merge_adapter(adapter_pair[0], tmp_path / "merged", dtype="fp32", device="cpu", progress=interrupt)
    assert list(tmp_path.iterdir()) == []

    def fail_after_save(event: Progress) -> None:
        if event.stage.startswith("moving") and not event.final:
            partial = [p for p in tmp_path.iterdir() if p.name.startswith(".merged.merging-")]
            assert len(partial) == 1 and (partial[0] / "model.safetensors").is_file()
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        merge_mod.merge_adapter(adapter_pair[0], tmp_path / "merged", dtype="fp32", device="cpu",
                                progress=fail_after_save)
    assert list(tmp_path.iterdir()) == []


def test_merge_keeps_the_base_dtype_by_default(adapter_pair, tmp_path) -> None:
    import json

    out = tmp_path / "merged-auto"
    base_dir, plan = merge_mod.make_plan(adapter_pair[0])
    expected = merge_mod.base_dtype(base_dir)
    assert plan.dtype == expected
    merge_mod.merge_adapter(adapter_pair[0], out, device="cpu")
    saved = json.loads((out / "config.json").read_text())
    assert {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[saved.get("dtype") or saved["torch_dtype"]] \
        == expected


def test_merge_removes_leftovers_of_a_killed_merge(adapter_pair, tmp_path) -> None:
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "merged"
    leftover = tmp_path / f".merged.merging-{dead.pid}-1"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"partial")
    merge_mod.merge_adapter(adapter_pair[0], out, device="cpu")
    assert not leftover.exists() and (out / "config.json").is_file()


def test_merge_progress_counts_every_module_and_the_bytes_saved(adapter_pair: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    events: list[Progress] = []
    result = merge_mod.merge_adapter(adapter_pair[1], tmp_path / "merged", dtype="fp32", device="cpu",
                                     progress=events.append)
    stages = list(dict.fromkeys(e.stage.split(" ")[0].rstrip(":") for e in events))
    assert stages == ["plan", "loading", "merging", "saving", "moving", "merged"]
    merging = [e for e in events if e.stage.startswith("merging")]
    config = json.loads((adapter_pair[1] / "adapter_config.json").read_text())
    adapted = 2 * len(config["target_modules"])  # the tiny base has 2 layers; told at the start and the end
    assert merging[0].done == 0 and merging[-1].done == merging[-1].total == adapted
    assert merging[-1].unit == "modules" and [e.done for e in merging] == sorted(e.done for e in merging)
    assert f"{adapted}/{adapted} modules" in merging[-1].describe()
    saving = [e for e in events if e.stage.startswith("saving")]
    assert saving[-1].done == saving[-1].total == result.plan.weights_bytes and saving[-1].unit == "bytes"
    assert events[-1].final and not events[-1].cancelled and sum(e.final for e in events) == 1
    assert events[-1].stage == f"merged into {tmp_path / 'merged'}"


@pytest.mark.parametrize("when", ["merging", "saving"])
def test_a_cancelled_merge_stops_before_the_rename_and_leaves_nothing(adapter_pair: tuple[Path, Path],
                                                                       tmp_path: Path, when: str) -> None:
    import threading

    cancel = threading.Event()
    events: list[Progress] = []

    def record(event: Progress) -> None:
        events.append(event)
        if event.stage.startswith(when):
            cancel.set()

    earlier = merge_mod.merge_adapter(adapter_pair[0], tmp_path / "merged", dtype="fp32", device="cpu")
    before = sorted((f.name, f.stat().st_mtime_ns) for f in (tmp_path / "merged").iterdir())
    with pytest.raises(Cancelled):
        merge_mod.merge_adapter(adapter_pair[1], tmp_path / "merged", dtype="fp32", device="cpu",
                                progress=record, cancel=cancel, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # no partial copy beside it
    assert sorted((f.name, f.stat().st_mtime_ns) for f in Path(earlier.output).iterdir()) == before  # unreplaced
    assert events[-1].final and events[-1].cancelled and events[-1].describe().endswith(": cancelled")
    assert not any(e.stage.startswith("moving") for e in events)
    if when == "merging":  # stopped between modules: the first one was not merged
        assert max(e.done for e in events if e.stage.startswith("merging")) == 0
