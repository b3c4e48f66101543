"""What lora-tui may do with an output directory: start a new run, resume one, or replace its own output.

Only lora-tui's own output is ever replaced. `--overwrite` (train and merge) replaces a directory only when it is
a lora-tui run directory (run.toml with status.json or launch.json) or a merged model lora-tui wrote (its
lora_tui_merge.json), holding nothing lora-tui did not write; never the current directory or one above it, never
a directory holding the data, the base model, the adapter being merged or another run (`replace_refusal`).

A replaced run is moved into RUN/.lora_tui_trash/ (the lock file stays where it is, so the directory keeps one
owner throughout) and deleted only once the new run has started (`empty_trash`, called by the training process);
a launch that fails before that puts it back (`restore_from_trash`).
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from lora_tui.core import run_lock, runs
from lora_tui.errors import UserError

TRASH_DIR = ".lora_tui_trash"
"""Inside a run directory: what `--overwrite` moved aside, until the new run has started."""
MERGE_INFO_FILE = "lora_tui_merge.json"
"""Written into every merged model by `adapters merge`: marks the directory as lora-tui's output."""
_RUN_NAMES = frozenset({
    runs.RUN_FILE, runs.LAUNCH_FILE, runs.STATUS_FILE, runs.METRICS_FILE, runs.LOG_FILE, runs.INFO_FILE,
    runs.STOP_FILE, runs.CHECKPOINTS_DIR, run_lock.LOCK_FILE, TRASH_DIR, *runs.ADAPTER_FILES, "README.md",
    "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json", "merges.txt",
    "vocab.json", "vocab.txt", "training_args.bin", "adapter_model.bin", "processor_config.json",
})
"""File names a run directory holds (the run's files, the adapter and the tokenizer save_pretrained writes)."""
_MERGE_NAMES = frozenset({
    MERGE_INFO_FILE, "config.json", "generation_config.json", "model.safetensors.index.json", "README.md",
    "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", "chat_template.json", "merges.txt",
    "vocab.json", "vocab.txt",
})
"""File names a merged model directory holds (besides its model-*.safetensors shards and tokenizer files)."""
_OWN_SUFFIXES = (".model", ".tiktoken")
"""Tokenizer files with model-specific names (sentencepiece, tiktoken)."""


def _is_own(name: str, kind: str) -> bool:
    """Whether a top-level entry of a run (or merge output) directory is one lora-tui writes."""
    if name.startswith("."):  # temporary files of atomic writes (.status.json.tmp1a2b), saving directories
        name = name[1:]
        return any(name.startswith(known + ".") for known in _RUN_NAMES | _MERGE_NAMES) \
            or name.startswith(("adapter-saving-", "lora_tui"))
    if name.startswith("tokenizer") or name.endswith(_OWN_SUFFIXES):
        return True
    if kind == "merge":
        return name in _MERGE_NAMES or (name.startswith("model") and name.endswith(".safetensors"))
    return name in _RUN_NAMES or name == "metrics.superseded.jsonl"


def is_run_dir(path: Path) -> bool:
    """A directory a lora-tui launch wrote: run.toml with status.json or launch.json."""
    return (path / runs.RUN_FILE).is_file() and ((path / runs.STATUS_FILE).is_file()
                                                 or (path / runs.LAUNCH_FILE).is_file())


def check_usable(path: Path, flag: str = "--output") -> None:
    """UserError for an output path that cannot be used: a symbolic link loop, a link to nothing, a file."""
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise UserError(f"{flag} {path}: a symbolic link to {os.readlink(path)}, which does not exist; "
                            "point it at a real directory") from None
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{flag} {path}: a symbolic link loop; point {flag} at a real directory") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise UserError(f"{flag} {path}: the path is too long; choose a shorter one") from None
        return  # not a directory on the way, no permission: creating it says so
    if not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a directory")


def _entries(path: Path) -> list[str]:
    """Names in the directory, the lock file left out (an empty run directory still has one)."""
    try:
        return sorted(c.name for c in path.iterdir() if c.name != run_lock.LOCK_FILE)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(f"--output {path}: cannot read it ({exc.strerror or exc})") from None


def check_output_dir(path: str | Path, *, resume: bool = False, overwrite: bool = False,
                     protect: Iterable[tuple[str, str | Path]] = (), held_by_caller: bool = False) -> str:
    """Decide what to do with an output directory; returns `new`, `resume` or `overwrite`.

    Raises UserError when a non-empty directory would be reused without --resume/--overwrite, when --resume has
    nothing to resume, when --overwrite would replace something that is not lora-tui's own run (see
    `replace_refusal`; `protect` is (what, path) of things that must survive, e.g. ("the training data", FILE)),
    or when a run is in progress there. `held_by_caller`: the caller holds the directory's lock (the launcher,
    checking again once it owns the directory).
    """
    p = Path(path).expanduser()
    check_usable(p)
    contents = _entries(p) if p.is_dir() else []
    if not held_by_caller and p.is_dir():
        _refuse_if_live(p)
    if resume:
        if not any((c / runs.COMPLETE_MARKER).is_file() for c in runs.list_checkpoints(p)):
            raise UserError(f"--resume: {p} has no complete checkpoint to resume from")
        return "resume"
    if not contents:
        return "new"
    if overwrite:
        reason = replace_refusal(p, kind="run", protect=protect)
        if reason:
            raise UserError(f"--output {p}: --overwrite refused: {reason}")
        return "overwrite"
    hint = " or --resume to continue it" if runs.latest_complete_checkpoint(p) is not None else ""
    raise UserError(
        f"--output {p}: directory is not empty; choose a new directory, "
        f"or pass --overwrite to replace it{hint}"
    )


def _refuse_if_live(p: Path) -> None:
    """UserError when a run is in progress in `p` (its lock is held, or, without a lock file, its pid lives)."""
    status = runs.read_status(p)
    locked = run_lock.probe(p)
    if locked or (status is not None and status.effective_state() in runs.LIVE_STATES):
        pid = f" (pid {status.pid})" if status is not None and status.pid else ""
        raise UserError(f"--output {p}: a run is in progress there{pid}; stop it first (`lora-tui runs stop "
                        f"{p}`), wait for it to end, or choose another directory")


def replace_refusal(path: Path, *, kind: str, protect: Iterable[tuple[str, str | Path]] = ()) -> str | None:
    """Why `path` must not be replaced, or None when it is lora-tui's own output (`kind`: run or merge)."""
    target = path.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd:
        return "it is the current directory"
    if target in cwd.parents:
        return "it contains the current directory"
    for what, other in protect:
        o = Path(other).expanduser()
        if not o.exists():
            continue
        o = o.resolve()
        if o == target or target in o.parents:
            return f"it {'is' if o == target else 'contains'} {what} ({other})"
    if kind == "merge" and not (path / MERGE_INFO_FILE).is_file():
        return (f"it is not a merged model written by lora-tui (no {MERGE_INFO_FILE}); lora-tui replaces only "
                "its own output")
    if kind == "run" and not is_run_dir(path):
        return (f"it is not a lora-tui run directory (no {runs.RUN_FILE} with {runs.STATUS_FILE}); "
                "lora-tui replaces only its own runs")
    for child in sorted(path.iterdir()):
        if child.is_dir() and child.name != runs.CHECKPOINTS_DIR and not child.name.startswith(".") \
                and any(runs.iter_run_dirs(child)):
            return f"it contains another run ({child.name})"
    foreign = [name for name in _entries(path) if not _is_own(name, kind)]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        return (f"it holds files lora-tui did not write ({', '.join(foreign[:3])}{more}); move them out "
                "or choose another directory")
    return None


# ---- the trash ------------------------------------------------------------------------------------------


def move_to_trash(run_dir: Path) -> Path | None:
    """Move everything but the lock file (and earlier trash) into RUN/.lora_tui_trash/replaced-N; returns it.

    OSError (nothing moved) when it cannot be done, e.g. on a full disk."""
    entries = [c for c in run_dir.iterdir() if c.name not in (run_lock.LOCK_FILE, TRASH_DIR)]
    if not entries:
        return None
    dest = run_dir / TRASH_DIR / f"replaced-{time.time_ns()}"
    dest.mkdir(parents=True)
    moved: list[Path] = []
    try:
        for entry in entries:
            entry.rename(dest / entry.name)
            moved.append(entry)
    except OSError:
        for entry in moved:
            (dest / entry.name).rename(entry)
        dest.rmdir()
        raise
    return dest


def restore_from_trash(run_dir: Path, moved: Path) -> None:
    """Put back what `move_to_trash` moved (after removing whatever the failed launch wrote)."""
    for entry in run_dir.iterdir():
        if entry.name not in (run_lock.LOCK_FILE, TRASH_DIR):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for entry in moved.iterdir():
        entry.rename(run_dir / entry.name)
    moved.rmdir()
    try:
        (run_dir / TRASH_DIR).rmdir()
    except OSError:
        pass


def empty_trash(run_dir: str | Path) -> None:
    """Delete what `--overwrite` replaced: called once the new run has started."""
    shutil.rmtree(Path(run_dir) / TRASH_DIR, ignore_errors=True)
