"""Checkpoints a run can resume from: verified before use, set aside when damaged, cleaned up after a full disk.

A checkpoint is *complete* when its marker is written (`runs.is_complete_checkpoint`); it is *usable* when its
files also read back: the adapter's safetensors file is whole (an 8-byte little-endian header length, a JSON
header giving each tensor's dtype, shape and data offsets, then exactly that much data) and trainer_state.json
parses. Those checks need no torch; the training process adds its own (the optimizer and scheduler load with
`torch.load(..., weights_only=True)`) through `choose_checkpoint(deep_check=...)`.

A damaged checkpoint is renamed `corrupt-checkpoint-N` (never deleted: its name no longer matches the Trainer's
`checkpoint-*`, so checkpoint rotation leaves it alone too) and the previous usable one is used.

What is wrong, and the notes, are `Phrase`s: English in the run's log and status (the training process runs in
English), in the current language where `lora-tui train --resume` or a screen shows them.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import runs
from lora_tui.i18n import Phrase

TRAINER_STATE = "trainer_state.json"
"""The Trainer's progress file in a checkpoint (global_step, max_steps, num_train_epochs, log_history)."""
SET_ASIDE_PREFIX = "corrupt-"
"""A damaged checkpoint-N is renamed corrupt-checkpoint-N."""
FSDP_STATE_FILES = ("pytorch_model_fsdp.bin", "optimizer.bin")
"""What a checkpoint of an FSDP run holds instead of optimizer.pt: the adapter's and the optimizer's full state, as
accelerate gathers them (`state_dict_type = FULL_STATE_DICT`)."""
TRAINING_STATE_FILES = frozenset({"optimizer.pt", "scheduler.pt", "scaler.pt", TRAINER_STATE, "training_args.bin",
                                  runs.COMPLETE_MARKER, *FSDP_STATE_FILES})
"""Files of a checkpoint that are not part of the adapter (with rng_state*.pth)."""
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
"""Bytes per element of each safetensors dtype."""
MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The safetensors format's own limit on the JSON header."""


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with an adapter's safetensors file (one line, a `Phrase`), or None when its header and sizes
    are consistent and it holds at least one tensor."""
    file = path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length <= 0 or length > MAX_HEADER_BYTES or 8 + length > size:
                return Phrase("{file}: truncated or not a safetensors file ({size} bytes)", file=file, size=size)
            header = json.loads(fh.read(length).decode("utf-8"))
    except FileNotFoundError:
        return Phrase("{file}: missing", file=file)
    except OSError as exc:
        return Phrase("{file}: unreadable ({error})", file=file, error=str(exc.strerror or exc))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Phrase("{file}: damaged header", file=file)
    if not isinstance(header, dict):
        return Phrase("{file}: damaged header", file=file)
    end = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        problem = _tensor_problem(meta)
        if problem:
            return Phrase("{file}: tensor {name}: {problem}", file=file, name=name, problem=problem)
        end = max(end, int(meta["data_offsets"][1]))
    if 8 + length + end != size:
        return Phrase("{file}: truncated (the header says {expected} bytes, the file has {size})", file=file,
                      expected=8 + length + end, size=size)
    if not any(name != "__metadata__" for name in header):
        return Phrase("{file}: holds no weights", file=file)
    return None


def _tensor_problem(meta: Any) -> str | None:
    """What is wrong with one tensor's header entry (a `Phrase`), or None."""
    if not isinstance(meta, dict):
        return Phrase("not an object")
    dtype, shape, offsets = meta.get("dtype"), meta.get("shape"), meta.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        return Phrase("unknown dtype {dtype}", dtype=repr(dtype))
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        return Phrase("bad shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        return Phrase("bad data offsets")
    if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[dtype]:
        return Phrase("{size} bytes for shape {shape} of {dtype}", size=offsets[1] - offsets[0], shape=str(shape),
                      dtype=dtype)
    return None


def read_trainer_state(checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's trainer_state.json as a dict, or None when missing or unreadable."""
    return runs.read_json_object(checkpoint / TRAINER_STATE)


def checkpoint_problem(checkpoint: Path) -> str | None:
    """What makes a complete checkpoint unusable (checks without torch, a `Phrase`), or None."""
    if not (checkpoint / runs.COMPLETE_MARKER).is_file():
        return Phrase("incomplete (no completion marker: the save was cut short)")
    state = read_trainer_state(checkpoint)
    if state is None:
        return Phrase("{file}: missing or not valid JSON", file=TRAINER_STATE)
    if not isinstance(state.get("global_step"), int) or isinstance(state.get("global_step"), bool):
        return Phrase("{file}: no global_step", file=TRAINER_STATE)
    return safetensors_problem(checkpoint / "adapter_model.safetensors")


@dataclass
class Choice:
    """The checkpoint to resume from, and what was found wrong on the way to it."""

    checkpoint: Path | None
    """The newest usable checkpoint (None when none is left)."""
    notes: list[str] = field(default_factory=list)
    """One line per damaged checkpoint: what is wrong, and where it was set aside."""
    damaged: list[tuple[str, str]] = field(default_factory=list)
    """(checkpoint name, what is wrong) for each newer checkpoint that could not be used."""


def choose_checkpoint(run_dir: str | Path, *, set_aside: bool = False,
                      deep_check: Callable[[Path], str | None] | None = None) -> Choice:
    """The newest usable checkpoint, newest first through every checkpoint with a completion marker.

    `deep_check` adds checks (the training process loads the optimizer and scheduler); with `set_aside` a
    damaged checkpoint is renamed corrupt-checkpoint-N. Checkpoints without a marker (a save cut short) are
    passed over silently, as they always were.
    """
    choice = Choice(None)
    for path in reversed(runs.list_checkpoints(run_dir)):
        if not (path / runs.COMPLETE_MARKER).is_file():
            continue
        problem = checkpoint_problem(path) or (deep_check(path) if deep_check is not None else None)
        if problem is None:
            choice.checkpoint = path
            break
        choice.damaged.append((path.name, problem))
        if set_aside:
            choice.notes.append(Phrase("{name} is damaged ({problem}); set aside as {aside}", name=path.name,
                                       problem=problem, aside=set_aside_checkpoint(path).name))
        else:
            choice.notes.append(Phrase("{name} is damaged ({problem})", name=path.name, problem=problem))
    return choice


def set_aside_checkpoint(path: Path) -> Path:
    """Rename a damaged checkpoint-N to corrupt-checkpoint-N (corrupt-checkpoint-N.2, ... if taken)."""
    target = path.with_name(SET_ASIDE_PREFIX + path.name)
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{SET_ASIDE_PREFIX}{path.name}.{n}")
    path.rename(target)
    return target


def planned_steps(checkpoint: Path, max_steps: int, num_train_epochs: float) -> int | None:
    """The run's last step as the resumed plan sees it: `max_steps` when set, else the checkpoint's own
    max_steps when it was planned for the same number of epochs (None when it cannot be told)."""
    if max_steps > 0:
        return max_steps
    state = read_trainer_state(checkpoint) or {}
    planned, epochs = state.get("max_steps"), state.get("num_train_epochs")
    if isinstance(planned, int) and planned > 0 and isinstance(epochs, (int, float)) \
            and math.isclose(float(epochs), num_train_epochs):
        return planned
    return None


def remove_partial_checkpoints(run_dir: str | Path) -> list[str]:
    """Delete checkpoint directories without a completion marker (a save cut short); returns their names."""
    removed = []
    for path in runs.list_checkpoints(run_dir):
        if not (path / runs.COMPLETE_MARKER).is_file():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def adapter_files(checkpoint: Path) -> list[Path]:
    """The files of a checkpoint that make up the adapter and its tokenizer (training state left out)."""
    return sorted(f for f in checkpoint.iterdir() if f.is_file() and f.name not in TRAINING_STATE_FILES
                  and not f.name.startswith("rng_state"))
