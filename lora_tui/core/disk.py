"""Disk space: checked before a run or a merge starts, and a full disk told apart from other failures.

A checkpoint holds the adapter (fp32: `core.lora_math`'s adapter_bytes_fp32), the optimizer state (AdamW keeps
two fp32 moments per trainable parameter: about twice the adapter), the tokenizer files and a few small files.
The Trainer writes a new checkpoint before it deletes the oldest, so a run keeps up to save_total_limit + 1 of
them at once, plus the final adapter.
"""

from __future__ import annotations

import errno
import math
import shutil
from pathlib import Path

from lora_tui.core.units import MIB, fmt_bytes
from lora_tui.errors import UserError
from lora_tui.i18n import Phrase, _

OPTIMIZER_STATE_FACTOR = 2
"""AdamW's optimizer state in bytes per adapter byte (two fp32 moments per fp32 parameter)."""
SMALL_FILES_BYTES = 8 * MIB
"""Tokenizer files, trainer state and RNG state per checkpoint: an allowance (a large tokenizer takes more)."""
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""errno values that mean the disk (or the user's quota) is full."""
FULL_DISK_WORDS = ("no space left on device", "storagefull", "disk quota exceeded", "os error 28")
"""How the error text says it where the errno is lost (safetensors' Rust writer, torch's stream writer)."""
TORCH_WRITE_FAILED = ("file write failed", "unexpected pos")
"""torch.save's words for a failed write: a full disk when hardly anything is left free."""
NEARLY_FULL_BYTES = 16 * MIB
"""Free space below which a failed write is taken to be a full disk."""


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the disk that holds `path` (or would hold it: its nearest existing parent)."""
    p = Path(path).expanduser().absolute()
    for candidate in (p, *p.parents):
        try:
            return int(shutil.disk_usage(candidate).free)
        except OSError:
            continue
    return None


def is_disk_full(exc: BaseException, where: str | Path | None = None) -> bool:
    """Whether `exc` (or an exception it was raised from) is a write that failed for want of disk space."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FULL_DISK_ERRNOS:
            return True
        text = str(current).lower()
        if any(word in text for word in FULL_DISK_WORDS):
            return True
        if where is not None and any(word in text for word in TORCH_WRITE_FAILED):
            free = free_bytes(where)
            if free is not None and free < NEARLY_FULL_BYTES:
                return True
        current = current.__cause__ or current.__context__
    return False


def checkpoint_bytes(adapter_bytes: int, gathered_bytes: int = 0) -> int:
    """About how much one checkpoint takes: the adapter, its optimizer state, FSDP's gathered state
    (`gathered_bytes`, `fsdp_gathered_bytes`) and the small files."""
    return adapter_bytes * (1 + OPTIMIZER_STATE_FACTOR) + gathered_bytes + SMALL_FILES_BYTES


def fsdp_gathered_bytes(adapter_bytes: int, tied_embedding_bytes: int) -> int:
    """What an FSDP checkpoint holds beside the adapter and the optimizer state: pytorch_model_fsdp.bin, the trainable
    state gathered in fp32 (the adapter again) and, for a model whose LM head shares the embedding, that embedding
    too (torch's state-dict helper leaves frozen weights out by parameter name, and a shared one keeps its second
    name: measured on the demo model, 4.0 of the file's 4.4 MiB)."""
    return adapter_bytes + tied_embedding_bytes


def run_space(adapter_bytes: int, *, save_total_limit: int, max_steps: int, save_steps: int,
              gathered_bytes: int = 0) -> tuple[int, int]:
    """(least, all): bytes for one checkpoint and the final adapter; bytes for every checkpoint kept at once."""
    one = checkpoint_bytes(adapter_bytes, gathered_bytes)
    saves = math.ceil(max_steps / save_steps) if max_steps > 0 and save_steps > 0 else save_total_limit + 1
    kept = max(1, min(save_total_limit + 1, saves + 1))  # + the checkpoint written at the end or on a stop
    final = adapter_bytes + SMALL_FILES_BYTES
    return one + final, kept * one + final


def check_run_space(output: str | Path, adapter_bytes: int, *, save_total_limit: int, max_steps: int,
                    save_steps: int, gathered_bytes: int = 0) -> str | None:
    """UserError when the disk of `output` cannot hold one checkpoint; a warning (a `Phrase`: English in launch.json,
    shown in the current language) when it may not hold them all. `gathered_bytes`: FSDP's (`fsdp_gathered_bytes`)."""
    free = free_bytes(output)
    if free is None or adapter_bytes <= 0:
        return None
    least, full = run_space(adapter_bytes, save_total_limit=save_total_limit, max_steps=max_steps,
                            save_steps=save_steps, gathered_bytes=gathered_bytes)
    sizes = {"size": fmt_bytes(checkpoint_bytes(adapter_bytes, gathered_bytes)), "adapter": fmt_bytes(adapter_bytes),
             "optimizer": fmt_bytes(OPTIMIZER_STATE_FACTOR * adapter_bytes)}
    each = Phrase("a checkpoint takes about {size}: adapter {adapter}, optimizer state {optimizer}, FSDP's gathered "
                  "state {gathered}, tokenizer and small files", gathered=fmt_bytes(gathered_bytes), **sizes) \
        if gathered_bytes else Phrase("a checkpoint takes about {size}: adapter {adapter}, optimizer state "
                                      "{optimizer}, tokenizer and small files", **sizes)
    if free < least:
        raise UserError(_("--output {path}: {free} free on its disk, the run needs at least {need}: {each}; free "
                          "space or choose another disk").format(path=output, free=fmt_bytes(free),
                                                                 need=fmt_bytes(least), each=each))
    if free < full:
        return Phrase("--output {path}: {free} free on its disk; the run may keep up to {need} ({each}): it may run "
                      "out of space (lower --save-total-limit or free space)", path=str(output),
                      free=fmt_bytes(free), need=fmt_bytes(full), each=each)
    return None


def check_merge_space(output: str | Path, need_bytes: int) -> None:
    """UserError when the disk of `output` cannot hold the merged model."""
    free = free_bytes(output)
    if free is not None and free < need_bytes:
        raise UserError(_("--output {path}: the merged model needs about {need}, its disk has {free} free; free "
                          "space or choose another disk").format(path=output, need=fmt_bytes(need_bytes),
                                                                 free=fmt_bytes(free)))
