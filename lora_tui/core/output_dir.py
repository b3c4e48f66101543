"""What lora-tui may do with an output directory: start a new run, resume one, or replace its own output.

Only lora-tui's own output is ever replaced. `--overwrite` (train and merge) replaces a directory only when it is
a lora-tui run directory (run.toml with status.json or launch.json) or a merged model lora-tui wrote (its
lora_tui_merge.json), holding nothing lora-tui did not write; never the current directory or one above it, never
a directory holding the data, the base model, the adapter being merged or another run (`replace_refusal`).

A replaced run is moved into RUN/.lora_tui_trash/ (the lock file stays where it is, so the directory keeps one
owner throughout) and deleted only once the new run has started (`empty_trash`, called by the training process);
a launch that fails before that puts it back (`restore_from_trash`).

A node other than 0 writes only its log, RUN/node-R.log, and may start before node 0 when the run directory is on
storage the machines share: those logs are not content (node 0 takes a directory holding only them as new), and
they stay where they are through an overwrite or its undoing, since their node may be writing them.

The refusals are in the language shown (`_()`); none of them is written into a run file.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from lora_tui.core import distributed, run_lock, runs
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _

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
PROTECTED = (N_("the training data"), N_("the base model"), N_("the adapter being merged"), N_("its run"))
"""What callers name in `protect` (in English; `replace_refusal` shows it in the language shown)."""


def is_node_log(name: str) -> bool:
    """Whether `name` is the log of a node other than 0 (`core.distributed.node_log_name`: node-R.log, R > 0)."""
    rank = name.removeprefix("node-").removesuffix(".log")
    return rank.isascii() and rank.isdigit() and int(rank) > 0 and distributed.node_log_name(int(rank)) == name


def _stays(name: str) -> bool:
    """Entries a replaced run leaves in place: the lock, the trash itself, other nodes' logs."""
    return name in (run_lock.LOCK_FILE, TRASH_DIR) or is_node_log(name)


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
            raise UserError(_("{flag} {path}: a symbolic link to {target}, which does not exist; point it at a real "
                              "directory").format(flag=flag, path=path, target=os.readlink(path))) from None
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(_("{flag} {path}: a symbolic link loop; point {flag} at a real directory").format(
                flag=flag, path=path)) from None
        if exc.errno == errno.ENAMETOOLONG:
            raise UserError(_("{flag} {path}: the path is too long; choose a shorter one").format(
                flag=flag, path=path)) from None
        return  # not a directory on the way, no permission: creating it says so
    if not path.is_dir():
        raise UserError(_("{flag} {path}: exists and is not a directory").format(flag=flag, path=path))


def _entries(path: Path) -> list[str]:
    """Names in the directory, the lock file (an empty run directory still has one) and other nodes' logs left
    out."""
    try:
        return sorted(c.name for c in path.iterdir() if c.name != run_lock.LOCK_FILE and not is_node_log(c.name))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(_("--output {path}: cannot read it ({error})").format(path=path,
                                                                             error=exc.strerror or exc)) from None


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
            raise UserError(_("--resume: {path} has no complete checkpoint to resume from").format(path=p))
        return "resume"
    if not contents:
        return "new"
    if overwrite:
        reason = replace_refusal(p, kind="run", protect=protect)
        if reason:
            raise UserError(_("--output {path}: --overwrite refused: {reason}").format(path=p, reason=reason))
        return "overwrite"
    if runs.latest_complete_checkpoint(p) is not None:
        raise UserError(_("--output {path}: directory is not empty; choose a new directory, or pass --overwrite to "
                          "replace it or --resume to continue it").format(path=p))
    raise UserError(_("--output {path}: directory is not empty; choose a new directory, or pass --overwrite to "
                      "replace it").format(path=p))


def _refuse_if_live(p: Path) -> None:
    """UserError when a run is in progress in `p` (its lock is held, or, without a lock file, its pid lives)."""
    status = runs.read_status(p)
    locked = run_lock.probe(p)
    if locked or (status is not None and status.effective_state() in runs.LIVE_STATES):
        if status is not None and status.pid:
            raise UserError(_("--output {path}: a run is in progress there (pid {pid}); stop it first (`lora-tui "
                              "runs stop {path}`), wait for it to end, or choose another directory").format(
                                  path=p, pid=status.pid))
        raise UserError(_("--output {path}: a run is in progress there; stop it first (`lora-tui runs stop "
                          "{path}`), wait for it to end, or choose another directory").format(path=p))


def replace_refusal(path: Path, *, kind: str, protect: Iterable[tuple[str, str | Path]] = ()) -> str | None:
    """Why `path` must not be replaced, or None when it is lora-tui's own output (`kind`: run or merge); `protect`
    names each thing in English (`PROTECTED`), shown translated."""
    target = path.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd:
        return _("it is the current directory")
    if target in cwd.parents:
        return _("it contains the current directory")
    for what, other in protect:
        o = Path(other).expanduser()
        if not o.exists():
            continue
        o = o.resolve()
        if o == target:
            return _("it is {what} ({path})").format(what=_(what), path=other)
        if target in o.parents:
            return _("it contains {what} ({path})").format(what=_(what), path=other)
    if kind == "merge" and not (path / MERGE_INFO_FILE).is_file():
        return _("it is not a merged model written by lora-tui (no {file}); lora-tui replaces only its own "
                 "output").format(file=MERGE_INFO_FILE)
    if kind == "run" and not is_run_dir(path):
        return _("it is not a lora-tui run directory (no {run_file} with {status_file}); lora-tui replaces only its "
                 "own runs").format(run_file=runs.RUN_FILE, status_file=runs.STATUS_FILE)
    for child in sorted(path.iterdir()):
        if child.is_dir() and child.name != runs.CHECKPOINTS_DIR and not child.name.startswith(".") \
                and any(runs.iter_run_dirs(child)):
            return _("it contains another run ({name})").format(name=child.name)
    foreign = [name for name in _entries(path) if not _is_own(name, kind)]
    if len(foreign) > 3:
        return _("it holds files lora-tui did not write ({names} and {count} more); move them out or choose another "
                 "directory").format(names=", ".join(foreign[:3]), count=len(foreign) - 3)
    if foreign:
        return _("it holds files lora-tui did not write ({names}); move them out or choose another "
                 "directory").format(names=", ".join(foreign))
    return None


# ---- the trash ------------------------------------------------------------------------------------------


def move_to_trash(run_dir: Path) -> Path | None:
    """Move everything but the lock file, earlier trash and other nodes' logs into RUN/.lora_tui_trash/replaced-N;
    returns it.

    OSError (nothing moved) when it cannot be done, e.g. on a full disk."""
    entries = [c for c in run_dir.iterdir() if not _stays(c.name)]
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
        if not _stays(entry.name):
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
