"""Validate a source's records in order under one schema: the detected one, or the person's `--columns`.

The schema is the most common among the first `DETECT_RECORDS` recognisable records (ties to the first seen);
a record of another schema is a problem at its line. A file whose records match no schema, or a schema that is
refused (preference data, prompt-only data), is one problem at its first record, naming its fields and
`--columns`: the rest of the file is not read. With several files (shards, a glob) every file must hold the
same schema; the first file that differs is a UserError naming it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from lora_tui.core.dataset.mapping import ColumnMap, Refusal, Schema, detect, explicit_schema, unknown_message
from lora_tui.core.dataset.readers import RawRecord, Source
from lora_tui.core.dataset.shapes import RecordError, normalise
from lora_tui.errors import UserError
from lora_tui.i18n import Phrase, _

DETECT_RECORDS = 20
"""How many recognisable records at the start of a file decide its schema (majority, ties to the first)."""

DETECT_BUFFER = 1000
"""Most records held back while the schema is still undecided (bounds memory on files of unknown records)."""

Checked = tuple[RawRecord, dict[str, Any] | None, str | None]
"""(raw record, normalised example or None, problem or None)."""


def location(label: str, raw: RawRecord) -> str:
    """`file:line`, `file:row N` (a `Phrase`) or the file alone, for a record of the source named `label`."""
    where = raw.file or label
    if raw.line is not None:
        return f"{where}:{raw.line}"
    if raw.row is not None:
        return Phrase("{path}:row {row}", path=where, row=raw.row)
    return where


class Scanner:
    """Iterates (raw, example, problem) over a source's records; `schema`, `fields` and `keys` are known once
    the first record has been yielded."""

    def __init__(self, source: Source, label: str, columns: ColumnMap | None = None) -> None:
        self.source = source
        self.label = label
        self.columns = columns
        self.schema: Schema | None = explicit_schema(columns) if columns is not None else None
        """The schema every record is read with (None: none recognised)."""
        self.refusal: Refusal | None = None
        """The refused layout the file holds, if it holds one."""
        self.fields: tuple[str, ...] = ()
        """The first record's field names."""
        self.keys: set[str] = set()
        """Fields of the records that decided the schema (which optional columns the data has)."""
        self.stopped = False
        """True when the file was refused at its first record and not read further."""
        self._file: str | None = None
        self._first_file: str | None = None

    def __iter__(self) -> Iterator[Checked]:
        records = iter(self.source.records)
        held: list[RawRecord] = []
        if self.columns is None:
            held = self._detect(records)
        else:
            for raw in records:
                held.append(raw)
                if raw.problem is None:
                    break
        first = next((r for r in held if r.problem is None), None)
        if first is not None and isinstance(first.value, dict):
            self.fields = tuple(map(str, first.value))
        stop = self._whole_file_problem(first)
        for raw in held:
            if stop is not None and raw is first:
                self.stopped = True
                yield raw, None, stop
                return
            yield self._check(raw)
        del held
        check = self._check
        for raw in records:
            yield check(raw)

    def _detect(self, records: Iterator[RawRecord]) -> list[RawRecord]:
        """Read ahead until DETECT_RECORDS records are recognised; choose the schema by majority."""
        held: list[RawRecord] = []
        votes: Counter[str] = Counter()
        found: dict[str, Schema | Refusal] = {}
        keys: dict[str, set[str]] = {}
        for raw in records:
            held.append(raw)
            got = detect(raw.value) if raw.problem is None else None
            if got is not None:
                votes[got.name] += 1
                found.setdefault(got.name, got)
                keys.setdefault(got.name, set()).update(map(str, raw.value))
            if sum(votes.values()) >= DETECT_RECORDS or len(held) >= DETECT_BUFFER:
                break
        if votes:
            name = votes.most_common(1)[0][0]
            chosen = found[name]
            self.keys = keys[name]
            if isinstance(chosen, Refusal):
                self.refusal = chosen
            else:
                self.schema = chosen
        return held

    def _whole_file_problem(self, first: RawRecord | None) -> str | None:
        """The one problem that stops reading: a refused layout, no schema, or a --columns field not there."""
        if first is None:
            return None
        if self.refusal is not None:
            return self.refusal.message
        if self.schema is None:
            return unknown_message(first.value)
        if self.columns is not None and isinstance(first.value, dict):
            missing = [f for f in self.columns.fields if f not in first.value]
            if missing:
                return Phrase("--columns {columns}: no field `{field}` in the records; their fields: {fields}",
                              columns=str(self.columns), field=missing[0],
                              fields=", ".join(self.fields) or Phrase("none"))
        return None

    def _check(self, raw: RawRecord) -> Checked:
        """Validate one raw record against the schema."""
        if raw.problem is not None:
            return raw, None, raw.problem
        if raw.file is not None and raw.file != self._file:
            self._new_file(raw)
        schema = self.schema
        if schema is None:
            return raw, None, unknown_message(raw.value)
        if self.columns is None:
            got = detect(raw.value)
            if got is None:
                return raw, None, unknown_message(raw.value)
            if got.name != schema.name:
                return raw, None, Phrase("record looks like {got} data but the file holds {schema} data",
                                         got=got.name, schema=schema.name)
        try:
            return raw, normalise(raw.value, schema), None
        except RecordError as exc:
            return raw, None, exc.message

    def _new_file(self, raw: RawRecord) -> None:
        """The first record of another file of the dataset: it must hold the same schema."""
        self._file = raw.file
        if self._first_file is None:
            self._first_file = raw.file
            return
        first_file = self._first_file
        if self.schema is None or not isinstance(raw.value, dict):
            return
        if self.columns is not None:
            missing = [f for f in self.columns.fields if f not in raw.value]
            if missing:
                raise UserError(_("{where}: no field `{field}` (--columns {columns}); its fields: {fields}; the "
                                  "files of one dataset must share one schema").format(
                                      where=location(self.label, raw), field=missing[0], columns=self.columns,
                                      fields=", ".join(map(str, raw.value))))
            return
        got = detect(raw.value)
        if got is not None and got.name != self.schema.name:
            raise UserError(_("{where}: this file holds {got} data but {first} holds {schema} data; the files of "
                              "one dataset must share one schema").format(
                                  where=location(self.label, raw), got=got.name, first=first_file,
                                  schema=self.schema.name))
