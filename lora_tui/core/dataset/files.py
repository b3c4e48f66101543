"""What a data path names: one file, a directory of shards of one format, a glob, or a save_to_disk directory.

Every file is checked to be a regular file with os.stat before it is opened: a FIFO, a device (/dev/zero) or a
socket given as data is a one-line error, never a read that blocks or never ends. A directory holds either a
`datasets.save_to_disk` dataset (state.json, dataset_dict.json or .arrow files) or data files of one format, as
the Hugging Face hub lays them out (`data/train-00000-of-00003.parquet`; with several splits, `train` is read).
A glob (`data/*.jsonl`) names files of one format. Mixed formats are refused, naming the first file that differs.
"""

from __future__ import annotations

import glob
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lora_tui.core.dataset.readers import (
    EXTENSIONS,
    LINE_FORMATS,
    Cursor,
    RawRecord,
    Source,
    read_arrow_files,
    read_records,
)
from lora_tui.errors import UserError
from lora_tui.i18n import N_, Phrase, _

_SHARD = re.compile(r"^(?P<split>[A-Za-z_]+)[-_.]\d+[-_]of[-_]\d+\.", re.IGNORECASE)
"""A hub shard name: `train-00000-of-00003.parquet` (the split is what comes before the numbers)."""

_GLOB_CHARS = frozenset("*?[")

_CANNOT_READ = N_("{path}: cannot read it ({error}); check its permissions")

_KINDS = ((stat.S_ISFIFO, N_("a FIFO (named pipe)")), (stat.S_ISCHR, N_("a character device")),
          (stat.S_ISBLK, N_("a block device")), (stat.S_ISSOCK, N_("a socket")))


def open_source(path: Path | str) -> Source:
    """Open a data path for streaming; UserError for a missing path, a path that is not a regular file or a
    directory, an unsupported or mixed format."""
    spec = str(path)
    path = Path(spec).expanduser()
    if not os.path.lexists(path) and _GLOB_CHARS & set(spec):
        return _open_files(spec, sorted(Path(p) for p in glob.glob(os.path.expanduser(spec), recursive=True)
                                        if not Path(p).is_dir()), [Phrase("glob {pattern}", pattern=spec)])
    mode = _stat(path)
    if stat.S_ISDIR(mode):
        _check_listable(path)
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file() or any(path.glob("*.arrow")):
            return _open_arrow_dir(path)
        return _open_shard_dir(path)
    _check_regular(path, mode)
    fmt = _format(path)
    _check_openable(path)
    notes: list[str] = []
    cursor = Cursor() if fmt in LINE_FORMATS else None  # a whole-file reader would say 0% until its end
    return Source(fmt, read_records(path, fmt, notes, cursor), os.stat(path).st_size, notes, cursor)


def _stat(path: Path) -> int:
    """The mode of `path` (following links); UserError when it does not exist."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(_("{path}: no such file or directory; check the path (try `lora-tui inspect --help`)").format(
            path=path)) from None
    except OSError as exc:
        raise UserError(_(_CANNOT_READ).format(path=path, error=exc.strerror or exc)) from None


def check_regular_file(path: Path) -> None:
    """UserError unless `path` is a regular file (checked with os.stat, before anything opens it)."""
    _check_regular(path, _stat(path))


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), N_("not a regular file"))
    raise UserError(_("{path}: {kind}, not a data file; pass a regular file or a dataset directory").format(
        path=path, kind=_(kind)))


def _check_openable(path: Path) -> None:
    """UserError when a regular file cannot be opened (permissions)."""
    try:
        path.open("rb").close()
    except OSError as exc:
        raise UserError(_(_CANNOT_READ).format(path=path, error=exc.strerror or exc)) from None


def _check_listable(path: Path) -> None:
    """UserError when a directory cannot be listed (permissions)."""
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as exc:
        raise UserError(_(_CANNOT_READ).format(path=path, error=exc.strerror or exc)) from None


def _format(path: Path) -> str:
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(_("{path}: unsupported file type {suffix}; use .jsonl, .json, .csv, .tsv, .parquet, a "
                          "directory of such files, or a directory written by datasets' save_to_disk").format(
                              path=path, suffix=repr(path.suffix) if path.suffix else _("(no extension)")))
    return fmt


def _open_shard_dir(path: Path) -> Source:
    """A directory of data files of one format (searched recursively; hidden files skipped)."""
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS and not _hidden(p, path)
                   and not p.is_dir())
    if not files:
        raise UserError(_("{path}: no data files in this directory (.jsonl, .json, .csv, .tsv, .parquet) and it was "
                          "not written by datasets' save_to_disk; pass a data file instead").format(path=path))
    notes: list[str] = []
    splits = {m.group("split").lower() for f in files if (m := _SHARD.match(f.name))}
    if len(splits) > 1 and "train" in splits:
        files = [f for f in files if (m := _SHARD.match(f.name)) and m.group("split").lower() == "train"]
        notes.append(Phrase("shards of several splits: using `train` (splits: {splits})",
                            splits=", ".join(sorted(splits))))
    return _open_files(str(path), files, notes)


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)


def _open_files(label: str, files: list[Path], notes: list[str]) -> Source:
    """Several files of one format, read one after the other; each record knows its file."""
    if not files:
        raise UserError(_("{path}: no files match; check the pattern").format(path=label))
    if len(files) == 1 and notes and notes[0].startswith("glob"):
        notes = []
    fmt = _format(files[0])
    for file in files:
        _check_regular(file, _stat(file))
        other = _format(file)
        if other != fmt:
            raise UserError(_("{file}: {other} file among {format} files (first: {first}); the files of one "
                              "dataset must share one format").format(file=file, other=other, format=fmt,
                                                                      first=files[0]))
    if len(files) > 1:
        notes.append(Phrase("{count} {format} files, read in name order ({first} … {last})", count=len(files),
                            format=fmt, first=files[0].name, last=files[-1].name))
    size = sum(os.stat(f).st_size for f in files)
    cursor = Cursor()
    return Source(fmt, _chain(files, fmt, notes, cursor), size, notes, cursor)


def _chain(files: list[Path], fmt: str, notes: list[str], cursor: Cursor) -> Iterator[RawRecord]:
    """The records of each file in turn, tagged with their file; `cursor` counts the files finished (and the
    position in the open one, for line-based formats)."""
    for file in files:
        _check_openable(file)
        name = str(file)
        for rec in read_records(file, fmt, notes, cursor):
            yield RawRecord(rec.line, rec.row, rec.value, rec.problem, name)
        cursor.done_with(os.stat(file).st_size)


def _open_arrow_dir(path: Path) -> Source:
    """A `datasets.save_to_disk` directory (Dataset, or DatasetDict whose `train` split is used)."""
    notes: list[str] = []
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    dict_file = path / "dataset_dict.json"
    if dict_file.is_file():
        splits = _json_file(dict_file).get("splits") or sorted(p.name for p in path.iterdir() if p.is_dir())
        if "train" not in splits:
            raise UserError(_("{path}: this DatasetDict has no `train` split (splits: {splits}); pass the split's "
                              "directory instead").format(path=path, splits=", ".join(splits)))
        notes.append(Phrase("DatasetDict: using the `train` split (splits: {splits})", splits=", ".join(splits)))
        path = path / "train"
    files = _arrow_files(path)
    for file in files:
        check_regular_file(file)
    return Source("arrow", read_arrow_files(files), size, notes)


def _arrow_files(path: Path) -> list[Path]:
    """The .arrow shards of a save_to_disk directory, in state.json order when it lists them."""
    state = path / "state.json"
    if state.is_file():
        names = [d["filename"] for d in _json_file(state).get("_data_files", []) if "filename" in d]
        if names:
            return [path / n for n in names]
    files = sorted(path.glob("*.arrow"))
    if not files:
        raise UserError(_("{path}: a directory must be written by datasets' save_to_disk (no .arrow files, no "
                          "state.json) or hold data files; pass a data file instead").format(path=path))
    return files


def _json_file(path: Path) -> dict[str, Any]:
    """A small JSON metadata file; UserError when it cannot be read."""
    check_regular_file(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(_("{path}: cannot read this metadata file: {error}").format(path=path, error=exc)) from None
    if not isinstance(data, dict):
        raise UserError(_("{path}: expected a JSON object").format(path=path))
    return data
