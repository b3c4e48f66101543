"""Merge an adapter into its base (`merge_and_unload`) and save a model that transformers loads on its own.

The memory the merge needs is estimated first (`merge_plan`), and the device chosen so that it fits; the disk
space the merged model takes is known then too, and checked. The model is written into a hidden temporary
sibling of the output directory and renamed into place at the end, so an interrupted merge never leaves a
directory that looks like a finished model; a full disk mid-save removes the partial copy. `--overwrite`
replaces only a merged model lora-tui wrote (its lora_tui_merge.json marks it; `core.output_dir`), and an
adapter whose run is still training is refused (`core.adapters.merge_note`).

Progress (`core.progress`): loading the base and the adapter (elapsed time), merging module by module (count and
time left), saving (bytes written of the expected size, and time left). A cancel request is honoured between
modules and after each stage up to the final rename, never after it: a cancelled merge leaves nothing behind.

Heavy: imports torch, transformers and peft. Import this module lazily.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from lora_tui.core import adapters as core_adapters
from lora_tui.core import disk, output_dir
from lora_tui.core.output_dir import MERGE_INFO_FILE
from lora_tui.core.progress import Cancelled, ProgressTracker, Report
from lora_tui.core.units import MIB, fmt_bytes
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, pgettext
from lora_tui.inference.merge_plan import DTYPE_BYTES, MergePlan, plan_merge
from lora_tui.inference.session import TORCH_DTYPES, _has_tokenizer, resolve_base
from lora_tui.train.quiet import quiet_libraries


@dataclass
class MergeResult:
    """What a finished merge produced."""

    output: str
    """The merged model directory."""
    base: str
    """The base model directory it was merged into."""
    plan: MergePlan
    """The memory plan the merge ran under."""
    seconds: float
    """Wall time of the merge, loading and saving included."""
    files: list[tuple[str, int]]
    """(name, bytes) of the files written."""
    note: str | None = None
    """For an adapter of a run that did not finish: which step the adapter is from."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        data = asdict(self)
        data["plan"] = self.plan.to_dict()
        return data


def _gpu_free() -> int | None:
    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info()
    return int(free)


def _ram_available() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def base_dtype(base_dir: Path) -> str:
    """The dtype the base model was saved in (config.json `dtype`/`torch_dtype`), as bf16/fp16/fp32."""
    try:
        config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "bf16"
    name = str(config.get("dtype") or config.get("torch_dtype") or "bfloat16")
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(name, "bf16")


def make_plan(adapter: str | Path, *, base: str | None = None, dtype: str = "auto",
              device: str = "auto") -> tuple[Path, MergePlan]:
    """(base directory, memory plan) for merging `adapter`, from the safetensors headers (nothing loaded).

    `dtype="auto"` keeps the base model's own dtype, so the merged model gives the adapter's answers.
    """
    base_dir = resolve_base(adapter, base)
    if dtype == "auto":
        dtype = base_dtype(base_dir)
    if dtype not in DTYPE_BYTES:
        raise UserError(_("--dtype {dtype}: choose one of auto, {choices}").format(dtype=dtype,
                                                                                  choices=", ".join(DTYPE_BYTES)))
    weight_files = sorted(base_dir.glob("*.safetensors"))
    if not weight_files:
        raise UserError(_("base model {path}: no .safetensors weights found; save it with safe_serialization").format(
            path=base_dir))
    base_params, largest = core_adapters.safetensors_param_stats(weight_files)
    adapter_params, _largest = core_adapters.safetensors_param_stats([Path(adapter) / core_adapters.WEIGHTS_FILE])
    plan = plan_merge(base_params=base_params, largest_weight_params=largest, adapter_params=adapter_params,
                      dtype=dtype, device=device, gpu_free_bytes=_gpu_free(),
                      ram_available_bytes=_ram_available())
    return base_dir, plan


def check_merge_output(output: Path, *, adapter: Path, base_dir: Path, overwrite: bool) -> None:
    """Refuse an output that exists and is not empty (unless `overwrite` and it is a merged model lora-tui wrote,
    holding neither the adapter, its run, nor the base), or that is the adapter or base."""
    output_dir.check_usable(output)
    resolved = output.resolve()
    if resolved in (adapter.resolve(), base_dir.resolve()):
        raise UserError(_("--output {path}: is the adapter or the base model itself; choose a new directory").format(
            path=output))
    if not (output.is_dir() and any(output.iterdir())):
        return
    if not overwrite:
        raise UserError(_("--output {path}: directory is not empty; choose a new directory or pass --overwrite"
                          ).format(path=output))
    protect = [(N_("the adapter being merged"), adapter), (N_("its run"), core_adapters.run_dir_of(adapter)),
               (N_("the base model"), base_dir)]  # core.output_dir's refusal shows them with _()
    reason = output_dir.replace_refusal(output, kind="merge", protect=protect)
    if reason:
        raise UserError(_("--output {path}: --overwrite refused: {reason}").format(path=output, reason=reason))


def _disk_need(plan: MergePlan, tokenizer_dir: Path) -> int:
    """Bytes the merged model takes on disk: its weights in the merge dtype, the tokenizer files, a margin."""
    tokenizer = sum(f.stat().st_size for f in tokenizer_dir.glob("*") if f.is_file() and "token" in f.name)
    return plan.weights_bytes + tokenizer + 4 * MIB


def merge_adapter(
    adapter: str | Path,
    output: str | Path,
    *,
    base: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    overwrite: bool = False,
    progress: Report | None = None,
    cancel: threading.Event | None = None,
) -> MergeResult:
    """Merge `adapter` into its base and save model + tokenizer to `output` (atomically renamed into place).

    `progress` receives the events; setting `cancel` stops the merge (`core.progress.Cancelled`) at its next safe
    point before the rename, with the partial copy removed."""
    started = time.monotonic()
    tracker = ProgressTracker(progress, cancel)
    a, out = Path(adapter), Path(output)
    core_adapters.read_adapter_config(a)
    core_adapters.read_safetensors_header(a / core_adapters.WEIGHTS_FILE)
    note = core_adapters.merge_note(a)  # refuses an adapter whose run is still training
    base_dir, plan = make_plan(a, base=base, dtype=dtype, device=device)
    check_merge_output(out, adapter=a, base_dir=base_dir, overwrite=overwrite)
    disk.check_merge_space(out, _disk_need(plan, a if _has_tokenizer(a) else base_dir))
    tmp = out.parent / f".{out.name}.merging-{os.getpid()}-{time.time_ns()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_merges(out)
        tmp.mkdir()
    except OSError as exc:
        raise UserError(_("--output {path}: cannot create it ({error}); choose a directory you can write").format(
            path=output, error=exc.strerror or exc)) from None
    try:
        tracker.stage(_("plan: {lines}").format(lines=pgettext("list separator", "; ").join(plan.lines())))
        _merge_into(a, base_dir, tmp, plan, tracker)
        tracker.check()  # the last point a cancel is taken: after the rename the merge is done
        tracker.stage(_("moving the merged model into place"))
        _replace_dir(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        tracker.finish(cancelled=isinstance(exc, Cancelled))
        if isinstance(exc, Exception) and disk.is_disk_full(exc, out.parent):
            raise UserError(_("--output {path}: no space left on device while writing the merged model; the partial "
                              "copy was removed, nothing was replaced; free about {size} and merge again").format(
                                  path=output, size=fmt_bytes(_disk_need(plan, base_dir)))) from None
        raise
    tracker.finish(_("merged into {path}").format(path=out))
    files = sorted((f.name, f.stat().st_size) for f in out.iterdir() if f.is_file())
    return MergeResult(str(out), str(base_dir), plan, time.monotonic() - started, files, note)


def _remove_stale_merges(out: Path) -> None:
    """Delete hidden directories of earlier merges to `out` whose process is gone (killed mid-merge, or after
    moving a replaced model aside and before deleting it)."""
    from lora_tui.core.runs import pid_alive

    for kind in ("merging", "replaced"):
        for stale in out.parent.glob(f".{out.name}.{kind}-*"):
            try:
                pid = int(stale.name.rsplit(f".{kind}-", 1)[1].split("-")[0])
            except (IndexError, ValueError):
                continue
            if not pid_alive(pid):
                shutil.rmtree(stale, ignore_errors=True)


def _merge_into(adapter: Path, base_dir: Path, tmp: Path, plan: MergePlan, tracker: ProgressTracker) -> None:
    quiet_libraries()
    tracker.stage(_("loading base {name} ({dtype}) on {device}").format(name=base_dir.name, dtype=plan.dtype,
                                                                       device=plan.device))
    model: Any = AutoModelForCausalLM.from_pretrained(base_dir, dtype=TORCH_DTYPES[plan.dtype])
    model = model.to(plan.device)
    tracker.check()
    tracker.stage(_("loading adapter {name}").format(name=adapter.name))
    try:
        peft_model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    except RuntimeError as exc:
        if "size mismatch" in str(exc):
            raise UserError(_("adapter {adapter}: made for a different architecture than base {base}; merge it with "
                              "the base it was trained on (--base)").format(adapter=adapter, base=base_dir)) from None
        raise
    tracker.check()
    merged = _merge_modules(peft_model, tracker)
    tracker.stage(_("saving the merged model to {name}").format(name=tmp.name), plan.weights_bytes, "bytes")
    with _watch_size(tmp, tracker):
        merged.save_pretrained(tmp, safe_serialization=True)
    tracker.check()
    tokenizer_dir = adapter if _has_tokenizer(adapter) else base_dir
    if _has_tokenizer(tokenizer_dir):
        AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(tmp)
    info = {"adapter": str(adapter.resolve()), "base": str(base_dir), "dtype": plan.dtype, "device": plan.device,
            "tokenizer_from": str(tokenizer_dir), "plan": plan.to_dict(), "time": time.time()}
    (tmp / MERGE_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _merge_modules(peft_model: Any, tracker: ProgressTracker) -> Any:
    """W <- W + scaling x B @ A in every adapted module, one at a time (counted, cancellable between modules),
    then the LoRA wrappers removed: what `merge_and_unload` does, with progress."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in peft_model.modules() if isinstance(m, BaseTunerLayer)]
    tracker.stage(_("merging: W <- W + scaling x B @ A"), len(layers), "modules")
    with torch.no_grad():
        for layer in layers:
            tracker.check()
            layer.merge()
            tracker.advance()
    return peft_model.unload()


class _watch_size:
    """While saving: the bytes written under `directory`, told to the tracker every few tenths of a second."""

    def __init__(self, directory: Path, tracker: ProgressTracker, every: float = 0.2) -> None:
        self.directory, self.tracker, self.every = directory, tracker, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _written(self) -> int:
        try:
            return sum(f.stat().st_size for f in self.directory.iterdir() if f.is_file())
        except OSError:
            return 0

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.tracker.advance(done=min(self._written(), self.tracker.current.total or 0))

    def __enter__(self) -> _watch_size:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self.tracker.advance(done=self.tracker.current.total or self._written())


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`; an existing `out` (overwrite) is moved aside first and deleted after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}-{time.time_ns()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
