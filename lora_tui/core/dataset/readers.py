"""Streaming readers for every supported data file format: each yields raw records with their location.

A reader never holds a whole file in memory, except a `.json` array (at most `MAX_JSON_BYTES`; larger ones
are refused with a pointer to JSONL). Problems that stop a record from being read at all (invalid JSON, bytes
that are not UTF-8, a binary file) come back as a `RawRecord` with `problem` set, so the caller can report and
count them.
pyarrow is imported only inside the Parquet and Arrow readers.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lora_tui.errors import UserError
from lora_tui.i18n import N_, Phrase, _

MAX_JSON_BYTES = 256 * 1024 * 1024
"""Largest `.json` array file read (it is parsed as one document); bigger files should be JSONL."""

SNIFF_BYTES = 8192
"""How much of a text file's head is checked for signs of binary content."""

ARROW_BATCH_ROWS = 1024
"""Rows per batch when reading Parquet row groups."""

_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A JSON escape of a UTF-16 surrogate: the only way a lone surrogate (not a character) gets into a record."""

JSON_CELLS = frozenset({"messages", "conversations", "prompt", "completion", "chosen", "rejected", "tools"})
"""CSV columns whose cells are parsed as JSON when they hold a list (chat turns, tool definitions)."""

NESTED_TOO_DEEP = Phrase("invalid JSON: nested too deeply to read (thousands of levels of [ or {)")
"""The problem reported for JSON whose nesting exceeds the parser's recursion limit."""

_MAGIC = (
    (b"PAR1", N_("not a text file: it looks like a Parquet file; give it a .parquet extension")),
    (b"\x1f\x8b", N_("not a text file: it is gzip-compressed; decompress it first")),
    (b"PK\x03\x04", N_("not a text file: it is a zip archive; extract it first")),
    (b"ARROW1", N_("not a text file: it looks like an Arrow file; pass the save_to_disk directory instead")),
)

JSON_ERRORS = {msg: msg for msg in (
    N_("Expecting value"), N_("Expecting ',' delimiter"), N_("Expecting ':' delimiter"),
    N_("Expecting property name enclosed in double quotes"), N_("Extra data"), N_("Unterminated string starting at"),
    N_("Invalid control character at"), N_("Invalid \\escape"),
    N_("Illegal trailing comma before end of object"), N_("Illegal trailing comma before end of array"))}
"""The json module's own error messages, shown translated (others, such as its message for a broken \\u escape, are
shown as the module words them)."""

_JSON_HINTS = {
    "": N_("invalid JSON: {error} (column {column})"),
    "array": N_("invalid JSON: {error} (column {column}); the file looks like a JSON array: name it .json"),
    "lines": N_("invalid JSON: {error} (column {column}); one record per line is JSON Lines: name the file .jsonl"),
}


def invalid_json(exc: json.JSONDecodeError, hint: str = "") -> str:
    """The problem of a line or document that is not JSON (a `Phrase`), with a hint about the file's name."""
    error = Phrase(JSON_ERRORS[exc.msg]) if exc.msg in JSON_ERRORS else exc.msg
    return Phrase(_JSON_HINTS[hint], error=error, column=exc.colno)


def _undecodable(bad: str, column: int) -> str:
    return Phrase("undecodable bytes: byte 0x{byte} at column {column} is not UTF-8; save the file as UTF-8",
                  byte=bad, column=column)


@dataclass(frozen=True)
class RawRecord:
    """One record as read from the file, before any shape checks."""

    line: int | None
    """1-based physical line where the record starts (text formats), else None."""
    row: int | None
    """1-based row number (Parquet and Arrow), else None."""
    value: Any = None
    """The decoded record (normally a dict); None when `problem` is set."""
    problem: str | None = None
    """Why the record could not be read (invalid JSON, not UTF-8, ...), else None."""
    file: str | None = None
    """The file it is in, when the data is several files (shards, a glob); None for a single file."""


LINE_FORMATS = ("jsonl", "csv", "tsv")
"""Formats read line by line, whose readers tell a `Cursor` their position."""


class Cursor:
    """How many bytes of a source have been read: the files finished plus the position in the open one (text
    formats only; a Parquet or Arrow reader does not say, and its source has no cursor)."""

    def __init__(self) -> None:
        self.finished = 0
        """Bytes of the files read to their end."""
        self._open: IO[bytes] | None = None

    def reading(self, fh: IO[bytes]) -> None:
        """The file now being read."""
        self._open = fh

    def done_with(self, size: int) -> None:
        """The open file was read to its end; it held `size` bytes."""
        self.finished += size
        self._open = None

    def position(self) -> int:
        """Bytes read so far (the open file's buffered position: a little ahead, never behind)."""
        fh = self._open
        try:
            return self.finished + (fh.tell() if fh is not None and not fh.closed else 0)
        except (OSError, ValueError):
            return self.finished


@dataclass
class Source:
    """An opened data source: its format, notes about how it is read, and its records."""

    format: str
    """File format name: jsonl, json, csv, tsv, parquet or arrow."""
    records: Iterator[RawRecord]
    """The records in file order (lazy)."""
    bytes: int
    """Size on disk in bytes (a directory: the sum of its files)."""
    notes: list[str] = field(default_factory=list)
    """Remarks on how the source is read (accepted variants, split chosen)."""
    cursor: Cursor | None = None
    """How far the reading is, in bytes of `bytes` (line-based formats); None where the reader cannot tell."""


EXTENSIONS = _EXTENSIONS
"""File extension -> format name, for every data file format read."""


def read_records(path: Path, fmt: str, notes: list[str], cursor: Cursor | None = None) -> Iterator[RawRecord]:
    """The records of one data file of format `fmt` (a key of the values of EXTENSIONS); a line-based reader
    tells `cursor` where it is."""
    if fmt == "jsonl":
        return _read_jsonl(path, cursor)
    if fmt == "json":
        return _read_json(path, path.stat().st_size, notes)
    if fmt in ("csv", "tsv"):
        return _read_csv(path, "\t" if fmt == "tsv" else ",", cursor)
    return _read_parquet(path)


def _binary_problem(head: bytes) -> str | None:
    """Why a file head is not UTF-8 text, or None when it looks like text."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Phrase("not UTF-8: the file is UTF-16 encoded; save it as UTF-8")
    for magic, problem in _MAGIC:
        if head.startswith(magic):
            return Phrase(problem)
    if b"\x00" in head:
        return Phrase("not a text file: binary data (NUL bytes) near the start; expected UTF-8 text")
    return None


def _decode_line(raw: bytes, line_no: int) -> tuple[str | None, str | None]:
    """Decode one physical line: (text, None) or (None, problem)."""
    if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        col = len(raw[: exc.start].decode("utf-8")) + 1  # characters, not bytes
        return None, _undecodable(bad, col)


def _read_jsonl(path: Path, cursor: Cursor | None = None) -> Iterator[RawRecord]:
    """One JSON value per line; blank lines skipped; BOM and CRLF accepted."""
    with path.open("rb") as fh:
        if cursor is not None:
            cursor.reading(fh)
        problem = _binary_problem(fh.read(SNIFF_BYTES))
        if problem:
            yield RawRecord(None, None, problem=problem)
            return
        fh.seek(0)
        seen_record = False
        for line_no, raw in enumerate(fh, start=1):
            text, problem = _decode_line(raw, line_no)
            if problem:
                yield RawRecord(line_no, None, problem=problem)
                continue
            assert text is not None
            if not text.strip():
                continue
            try:
                value = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                hint = "array" if not seen_record and text.lstrip().startswith("[") else ""
                yield RawRecord(line_no, None, problem=invalid_json(exc, hint))
            except RecursionError:
                yield RawRecord(line_no, None, problem=NESTED_TOO_DEEP)
            else:
                problem = _surrogate_problem(text, 0, len(text), value)
                yield RawRecord(line_no, None, None if problem else value, problem)
            seen_record = True


def _surrogate_problem(text: str, start: int, end: int, value: Any) -> str | None:
    """Why a decoded record is not text: a lone surrogate escape (e.g. "\\ud800") in text[start:end]."""
    if _SURROGATE_ESCAPE.search(text, start, end) is None:
        return None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        return Phrase("invalid text: the escape \\u{code} is half of a UTF-16 surrogate pair, not a character "
                      "(tokenizers refuse it); fix or remove it", code=f"{code:04x}")
    return None


def _read_json(path: Path, size: int, notes: list[str]) -> Iterator[RawRecord]:
    """A JSON array of records, or an object with exactly one list field (e.g. {"data": [...]})."""
    if size > MAX_JSON_BYTES:
        raise UserError(_("{path}: a .json file of {size} MB is too large to read as one document (limit {limit} "
                          "MB); convert it to JSONL, one record per line").format(
                              path=path, size=f"{size / 2**20:.0f}", limit=MAX_JSON_BYTES // 2**20))
    data = path.read_bytes()
    problem = _binary_problem(data[:SNIFF_BYTES])
    if problem:
        yield RawRecord(None, None, problem=problem)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[data.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode("utf-8", "replace")) + 1
        bad = data[exc.start : exc.start + 1].hex()
        yield RawRecord(line, None, problem=_undecodable(bad, col))
        return
    del data
    yield from _json_array_records(text, notes)


def _json_array_records(text: str, notes: list[str]) -> Iterator[RawRecord]:
    """Walk the top-level array element by element so each record keeps its line number."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] == "{":
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRecord(exc.lineno, None, problem=invalid_json(exc, "lines" if exc.msg == "Extra data" else ""))
            return
        except RecursionError:
            yield RawRecord(1, None, problem=NESTED_TOO_DEEP)
            return
        lists = [k for k, v in whole.items() if isinstance(v, list)]
        if len(lists) != 1:
            yield RawRecord(1, None, problem=Phrase(
                "a top-level JSON object must hold exactly one list of records (e.g. {{\"data\": [...]}}); list "
                "fields found: {found}", found=", ".join(lists) or Phrase("none")))
            return
        notes.append(Phrase("records read from the top-level field {field}", field=repr(lists[0])))
        del whole
        pos = _find_key_value(text, lists[0])
    if pos >= len(text) or text[pos] != "[":
        yield RawRecord(text.count("\n", 0, pos) + 1, None,
                        problem=Phrase("expected a JSON array of records ([{...}, {...}]) or JSONL"))
        return
    line, last = 1, 0
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        line += text.count("\n", last, pos)
        last = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield RawRecord(exc.lineno, None, problem=invalid_json(exc))
            return
        except RecursionError:
            yield RawRecord(line, None, problem=NESTED_TOO_DEEP)
            return
        problem = _surrogate_problem(text, pos, end, value)
        yield RawRecord(line, None, None if problem else value, problem)
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        lineno = text.count("\n", 0, pos) + 1
        yield RawRecord(lineno, None, problem=Phrase("invalid JSON: expected ',' or ']' after a record"))
        return


def _skip_ws(text: str, pos: int) -> int:
    """Index of the first non-whitespace character at or after `pos`."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _find_key_value(text: str, key: str) -> int:
    """Index where the value of top-level `key` starts in a JSON object (the text is known to be valid)."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, _skip_ws(text, 0) + 1)
    while pos < len(text):
        name, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ':'
        if name == key:
            return pos
        _value, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ','
    return len(text)


def _read_csv(path: Path, delimiter: str, cursor: Cursor | None = None) -> Iterator[RawRecord]:
    """Rows as dicts keyed by the header; each record's line is the physical line where its row starts."""
    with path.open("rb") as fh:
        if cursor is not None:
            cursor.reading(fh)
        problem = _binary_problem(fh.read(SNIFF_BYTES))
        if problem:
            yield RawRecord(None, None, problem=problem)
            return
        fh.seek(0)
        bad_lines: list[tuple[int, str]] = []
        reader = csv.reader(_decoded_lines(fh, bad_lines), delimiter=delimiter)
        header: list[str] | None = None
        done = 0
        for cells in reader:
            start, done = done + 1, reader.line_num
            if bad_lines:
                line_no, msg = bad_lines[0]
                bad_lines.clear()
                yield RawRecord(line_no, None, problem=msg)
                continue
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                continue
            if len(cells) > len(header):
                yield RawRecord(start, None, problem=Phrase("row has {cells} cells but the header has {columns} "
                                                            "columns", cells=len(cells), columns=len(header)))
                continue
            yield RawRecord(start, None, _csv_record(header, cells))


def _decoded_lines(fh: Iterable[bytes], bad: list[tuple[int, str]]) -> Iterator[str]:
    """Decode lines for the csv module, noting undecodable ones in `bad` (their text is replaced)."""
    for line_no, raw in enumerate(fh, start=1):
        text, problem = _decode_line(raw, line_no)
        if problem:
            bad.append((line_no, problem))
            text = raw.decode("utf-8", errors="replace")
        assert text is not None
        yield text


def _csv_record(header: list[str], cells: list[str]) -> dict[str, Any]:
    """A row as a dict; short rows leave the missing columns out; JSON-looking chat columns are parsed."""
    record: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=False):
        if name in JSON_CELLS and cell.lstrip().startswith("["):
            try:
                value = json.loads(cell)
            except (json.JSONDecodeError, RecursionError):
                value = None
            if isinstance(value, list) and all(isinstance(item, dict) for item in value):
                record[name] = value
                continue
        record[name] = cell
    return record


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    """Parquet rows, read a batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        yield RawRecord(None, None, problem=Phrase("not a readable Parquet file: {error}", error=str(exc)))
        return
    row = 1
    try:
        for rec in _batches_to_records(pfile.iter_batches(batch_size=ARROW_BATCH_ROWS)):
            row += 1
            yield rec
    except (pa.ArrowException, OSError) as exc:
        yield RawRecord(None, row, problem=Phrase("corrupt Parquet data: the rows from here on cannot be read "
                                                  "({error})", error=str(exc)))


def _batches_to_records(batches: Iterable[Any], first_row: int = 1) -> Iterator[RawRecord]:
    """Arrow record batches as 1-based numbered rows."""
    row = first_row
    for batch in batches:
        for value in batch.to_pylist():
            yield RawRecord(None, row, value)
            row += 1


def read_arrow_files(files: list[Path]) -> Iterator[RawRecord]:
    """Rows of Arrow IPC stream shards, numbered across shards."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    row = 1
    for file in files:
        try:
            with pa.memory_map(os.fspath(file)) as source:
                reader = ipc.open_stream(source)
                for rec in _batches_to_records(reader, row):
                    row += 1
                    yield rec
        except (pa.ArrowException, OSError) as exc:
            yield RawRecord(None, row, problem=Phrase("{file}: not a readable Arrow stream: {error}", file=file.name,
                                                      error=str(exc)))
            return
