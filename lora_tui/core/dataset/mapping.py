"""Which record field feeds which part of a training example: the built-in schemas and `--columns`.

A `ColumnMap` names, for each role, the field that holds it: `messages` (a list of turns), `prompt` (+ optional
`input`, joined to it as alpaca does) and `response`, `text`, and an optional `system`. The built-in schemas are
column maps with a name (alpaca, Dolly, question/answer, ...); `detect` picks one from a record's fields, and
`parse_columns` reads the one a person gives (`--columns prompt=question,response=answer`, the run file's
`columns`). Two layouts are recognised only to be refused, with what to do instead: preference data
(`chosen`/`rejected`, for DPO-style training) and conversational prompt-only data (for RL-style training).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from lora_tui.errors import UserError
from lora_tui.i18n import N_, Phrase, _

ROLES = ("messages", "prompt", "input", "response", "system", "text")
"""The parts of an example a field can be mapped to, in the order a mapping is written."""

COLUMNS_EXAMPLE = N_("prompt=question,response=answer[,system=sys], messages=dialog or text=body")
"""How a `--columns` mapping is written, for help and error messages (English; `_()` shows it)."""


@dataclass(frozen=True)
class ColumnMap:
    """Role -> record field, for one layout of records."""

    pairs: tuple[tuple[str, str], ...]
    """(role, field) pairs in `ROLES` order."""

    @functools.cached_property
    def roles(self) -> dict[str, str]:
        """role -> field."""
        return dict(self.pairs)

    def get(self, role: str) -> str | None:
        """The field mapped to `role`, or None."""
        return self.roles.get(role)

    @property
    def kind(self) -> str:
        """What the mapping builds: `messages` (turns), `instruction` (prompt -> response) or `text`."""
        if self.get("messages"):
            return "messages"
        return "text" if self.get("text") else "instruction"

    @property
    def fields(self) -> tuple[str, ...]:
        """The record fields the mapping reads."""
        return tuple(field for _, field in self.pairs)

    def __str__(self) -> str:
        return ",".join(f"{role}={field}" for role, field in self.pairs)


def column_map(**roles: str | None) -> ColumnMap:
    """A ColumnMap from role=field keywords (None values left out)."""
    return ColumnMap(tuple((role, field) for role in ROLES if (field := roles.get(role))))


def parse_columns(text: str) -> ColumnMap:
    """Parse `prompt=question,response=answer[,system=sys]`, `messages=dialog` or `text=body`; UserError naming
    what is wrong."""
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        role, sep, field = (s.strip() for s in item.partition("="))
        if not item or not sep or not role or not field:
            raise UserError(_("--columns {text}: {item} is not ROLE=FIELD; write {example}").format(
                text=repr(text), item=repr(item) if item else _("(empty)"), example=_(COLUMNS_EXAMPLE)))
        if role not in ROLES:
            raise UserError(_("--columns {text}: unknown role {role}; roles: {roles}").format(
                text=repr(text), role=repr(role), roles=", ".join(ROLES)))
        if role in pairs:
            raise UserError(_("--columns {text}: {role} is mapped twice").format(text=repr(text), role=role))
        pairs[role] = field
    mapping = column_map(**pairs)
    main = [r for r in ("messages", "prompt", "text") if r in pairs]
    if len(main) != 1:
        raise UserError(_("--columns {text}: map exactly one of messages, prompt (with response) or text; "
                          "write {example}").format(text=repr(text), example=_(COLUMNS_EXAMPLE)))
    allowed = {"messages": {"messages", "system"}, "prompt": {"prompt", "input", "response", "system"},
               "text": {"text"}}[main[0]]
    extra = sorted(set(pairs) - allowed)
    if extra:
        raise UserError(_("--columns {text}: {roles} cannot be combined with {main}").format(
            text=repr(text), roles=", ".join(extra), main=main[0]))
    if main[0] == "prompt" and "response" not in pairs:
        raise UserError(_("--columns {text}: prompt needs a response field too (response=FIELD)").format(
            text=repr(text)))
    return mapping


@dataclass(frozen=True)
class Schema:
    """A layout of records: its name and which field feeds each part of an example."""

    name: str
    """What people call it: messages, ShareGPT, alpaca, Dolly, question/answer, ... or --columns (a `Phrase` where
    it has words to translate)."""
    columns: ColumnMap
    """Role -> field; optional roles (system, alpaca's input) are read when a record has them."""
    optional: tuple[str, ...] = ()
    """Roles of `columns` a record may leave out."""

    def shown(self, keys: set[str] | frozenset[str]) -> ColumnMap:
        """The mapping as a report shows it: optional roles only when records have their field (`keys`)."""
        return ColumnMap(tuple((role, field) for role, field in self.columns.pairs
                               if role not in self.optional or field in keys))


@dataclass(frozen=True)
class Refusal:
    """A recognised layout that is not supervised fine-tuning data, with what to do instead."""

    name: str
    """What it is (preference data, prompt-only data)."""
    message: str
    """Why it is refused and what to do, in one line (a `Phrase`)."""


_INSTRUCTION = (
    # name, prompt field, optional second prompt field, response field; the first whose fields a record has wins
    ("Dolly", "instruction", "context", "response"),
    ("alpaca", "instruction", "input", "output"),
    ("question/answer", "question", None, "answer"),
    ("question/response", "question", None, "response"),
    ("query/response", "query", None, "response"),
    ("prompt/response", "prompt", None, "response"),
    ("input/output", "input", None, "output"),
)
"""Instruction data under the common column names (an optional system column is read too)."""

SYSTEM_COLUMNS = ("system", "system_prompt")
"""Names of the optional system-prompt column of instruction and ShareGPT data (OpenOrca: system_prompt)."""

TRL_CONVERSATIONAL = Phrase("TRL conversational prompt-completion")
"""The name of TRL's conversational prompt-completion schema (words, shown translated)."""

SCHEMA_NAMES = ("messages", "ShareGPT", TRL_CONVERSATIONAL, "prompt/completion", *(row[0] for row in _INSTRUCTION),
                "text")
"""Every built-in schema `detect` can return."""

PREFERENCE = Refusal(Phrase("preference data"), Phrase(
    "preference data (`chosen`/`rejected`) is for DPO-style training, which lora-tui does not train; use SFT "
    "data, or train on the preferred answers with --columns messages=chosen"))
"""Refusal of DPO-style records."""

PROMPT_ONLY = Refusal(Phrase("conversational prompt-only data"), Phrase(
    "`prompt` turns with no `completion` are prompt-only data (for RL-style training such as GRPO), not "
    "supervised fine-tuning data; add the answers as `completion` turns, or map them with --columns"))
"""Refusal of TRL's conversational prompt-only records."""


@functools.lru_cache(maxsize=256)
def _schema(name: str, optional: tuple[str, ...] = ("system",), **roles: str | None) -> Schema:
    return Schema(name, column_map(**roles), optional)


def detect(record: Any) -> Schema | Refusal | None:
    """The built-in schema a record's fields match (or a refusal); None when it matches none."""
    if not isinstance(record, dict):
        return None
    keys = record.keys()
    if "chosen" in keys and "rejected" in keys:
        return PREFERENCE
    if "messages" in keys:
        return _schema("messages", messages="messages", system=None)
    system = next((name for name in SYSTEM_COLUMNS if name in keys), "system")
    if "conversations" in keys:
        return _schema("ShareGPT", messages="conversations", system=system)
    prompt = record.get("prompt")
    if isinstance(prompt, list):
        if "completion" not in keys:
            return PROMPT_ONLY
        return _schema(TRL_CONVERSATIONAL, (), prompt="prompt", response="completion")
    if "prompt" in keys and "completion" in keys or "prompt" in keys and "response" not in keys:
        return _schema("prompt/completion", (), prompt="prompt", response="completion")
    for name, first, second, answer in _INSTRUCTION:
        if first in keys and (answer in keys or name == "alpaca"):
            optional = ("system", second) if second else ("system",)
            return _schema(name, optional, prompt=first, input=second, response=answer, system=system)
    if "text" in keys:
        return _schema("text", (), text="text")
    return None


def explicit_schema(columns: ColumnMap) -> Schema:
    """The schema of a person's `--columns` mapping (every role it names is required)."""
    return Schema("--columns", columns)


def unknown_message(record: Any) -> str:
    """Why a record matches no schema, naming its fields and `--columns` (a `Phrase`)."""
    if not isinstance(record, dict):
        return Phrase("record is {kind}, expected a JSON object", kind=kind_of(record))
    return Phrase("no known schema in the fields ({fields}); map them with --columns, e.g. --columns {example}",
                  fields=field_list(record), example=Phrase(COLUMNS_EXAMPLE))


def field_list(record: dict[str, Any]) -> str:
    """A record's field names, sorted, for messages (`none` when it has none)."""
    return ", ".join(sorted(map(str, record))) or Phrase("none")


_KINDS = {list: N_("a list"), str: N_("a string"), bool: N_("a boolean"), int: N_("a number"), float: N_("a number"),
          dict: N_("an object")}


def kind_of(value: Any) -> str:
    """A JSON type name with its article, for messages (a `Phrase`)."""
    if value is None:
        return "null"
    kind = _KINDS.get(type(value))
    return Phrase(kind) if kind else Phrase("a {type}", type=type(value).__name__)
