"""Records -> training examples: validate a record under its schema (core.dataset.mapping) and normalise it.

Normalised examples (what `iter_examples` yields, and what core.dataset.encode tokenizes):
- `messages`: {"messages": [{"role", "content", ...}], "tools"?}: chat; messages, ShareGPT and instruction data
  (a user turn from the prompt, an assistant turn from the response, a system turn when there is one)
- `chat_prompt_completion`: {"prompt": [turns], "completion": [turns]}: TRL's conversational prompt-completion
- `prompt_completion`: {"prompt": str, "completion": str}: TRL's standard prompt-completion (no chat template)
- `text`: {"text": str}
"""

from __future__ import annotations

import json
from typing import Any

from lora_tui.core.dataset.mapping import ColumnMap, Schema, field_list, kind_of
from lora_tui.i18n import N_, Phrase

SHAPES: dict[str, str] = {
    "messages": N_("chat turns, loss on the assistant turns"),
    "chat_prompt_completion": N_("chat prompt and completion turns, loss on the completion"),
    "prompt_completion": N_("prompt and completion text without a chat template, loss on the completion"),
    "text": N_("plain text, loss on every token"),
}
"""Every shape an example trains as, with what carries the loss (English; `_()` shows it)."""

CHAT_ROLES = ("system", "user", "assistant", "tool")
"""Roles accepted in a `messages` conversation."""

_ROLE_SET = frozenset(CHAT_ROLES)

SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "function_call": "assistant",
    "function": "tool",
    "observation": "tool",
    "tool": "tool",
}
"""ShareGPT `from` values and the chat role each becomes (function_call: the assistant calling a tool;
function, observation: the tool's answer)."""

TURN_EXTRAS = ("tool_calls", "tool_call_id", "name")
"""Turn fields kept besides role and content (chat templates read them for tool use)."""


class RecordError(ValueError):
    """A record that cannot be used for training; its message (a `Phrase`: English, shown translated) says what
    is wrong."""

    @property
    def message(self) -> str:
        """What is wrong (the Phrase it was raised with)."""
        return self.args[0] if self.args and isinstance(self.args[0], str) else str(self)


def shape_of(example: dict[str, Any]) -> str:
    """The shape of a normalised example."""
    if "messages" in example:
        return "messages"
    if "prompt" in example:
        return "chat_prompt_completion" if isinstance(example["prompt"], list) else "prompt_completion"
    return "text"


def normalise(record: Any, schema: Schema) -> dict[str, Any]:
    """Validate `record` under `schema` and return its normalised example; RecordError when it is not valid."""
    if not isinstance(record, dict):
        raise RecordError(Phrase("record is {kind}, expected a JSON object", kind=kind_of(record)))
    columns = schema.columns
    if schema.name != "--columns":
        for role, field in columns.pairs:
            if field not in record and role not in schema.optional:
                raise RecordError(Phrase("missing field `{field}`", field=field))
    else:
        for field in columns.fields:
            if field not in record:
                raise RecordError(Phrase("no field `{field}` (--columns {columns}); the record's fields: {fields}",
                                         field=field, columns=str(columns), fields=field_list(record)))
    if columns.kind == "messages":
        return _chat(record, columns, sharegpt=schema.name == "ShareGPT")
    if columns.kind == "text":
        return _text(record, columns.get("text") or "text")
    if schema.name == "prompt/completion":
        return _prompt_completion(record)
    return _instruction(record, columns)


def _string_field(record: dict[str, Any], name: str, *, place: str | None = None) -> str:
    """A required string field (missing, null or non-string is an error); `place` is the turn it is in
    (`messages[2]`)."""
    if name not in record:
        raise RecordError(Phrase("missing field `{name}` in {place}", name=name, place=place) if place else
                          Phrase("missing field `{field}`", field=name))
    value = record[name]
    if value is None:
        raise RecordError(Phrase("null content: `{name}` in {place} is null", name=name, place=place) if place
                          else Phrase("null content: `{name}` is null", name=name))
    if not isinstance(value, str):
        kind = kind_of(value)
        raise RecordError(Phrase("`{name}` in {place} must be a string, got {kind}", name=name, place=place,
                                 kind=kind) if place else
                          Phrase("`{name}` must be a string, got {kind}", name=name, kind=kind))
    return value


def _optional_string(record: dict[str, Any], name: str | None) -> str:
    """An optional string field ('' when missing, null or blank)."""
    if name is None:
        return ""
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise RecordError(Phrase("`{name}` must be a string (or empty), got {kind}", name=name, kind=kind_of(value)))
    return value if value and value.strip() else ""


def _turn_list(value: Any, field: str) -> list[Any]:
    """The conversation list of a chat field (not empty; a JSON string of a list, as CSV cells hold, is read)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise RecordError(Phrase("`{field}` is a string but not a JSON list of turns", field=field)) from None
    if value is None:
        raise RecordError(Phrase("null content: `{name}` is null", name=field))
    if not isinstance(value, list):
        raise RecordError(Phrase("`{field}` must be a list of turns, got {kind}", field=field, kind=kind_of(value)))
    if not value:
        raise RecordError(Phrase("empty conversation: `{field}` has no turns", field=field))
    return value


def _require_assistant(messages: list[dict[str, Any]], field: str) -> None:
    """A conversation must contain at least one assistant turn to learn from."""
    for message in messages:
        if message["role"] == "assistant":
            return
    roles = ", ".join(dict.fromkeys(m["role"] for m in messages))
    raise RecordError(Phrase("no assistant turn to learn from in `{field}` (roles present: {roles})", field=field,
                             roles=roles))


def _plain_turns(turns: list[Any]) -> bool:
    """True when every turn is exactly {role: known role, content: str} (the common case, checked fast)."""
    for turn in turns:
        if type(turn) is not dict or len(turn) != 2:
            return False
        role, content = turn.get("role"), turn.get("content")
        if type(content) is not str or role not in _ROLE_SET:
            return False
    return True


def _role_turn(turn: Any, field: str, i: int) -> dict[str, Any]:
    """One {role, content} turn; an assistant turn may carry `tool_calls` with null or no content."""
    place = f"{field}[{i}]"
    if not isinstance(turn, dict):
        raise RecordError(Phrase("{place} is {kind}, expected an object with `role` and `content`", place=place,
                                 kind=kind_of(turn)))
    role = _string_field(turn, "role", place=place)
    if role not in _ROLE_SET:
        raise RecordError(Phrase("unknown role {role} in {place}; allowed roles: {roles}", role=repr(role),
                                 place=place, roles=", ".join(CHAT_ROLES)))
    calls = turn.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
        raise RecordError(Phrase("`tool_calls` in {place} must be a list of objects, got {kind}", place=place,
                                 kind=kind_of(calls)))
    if calls and turn.get("content") is None:
        content = ""
    else:
        content = _string_field(turn, "content", place=place)
    out: dict[str, Any] = {"role": role, "content": content}
    out.update((k, turn[k]) for k in TURN_EXTRAS if turn.get(k) is not None)
    return out


def _sharegpt_turn(turn: Any, field: str, i: int) -> dict[str, Any]:
    """One ShareGPT {from, value} turn as a chat turn."""
    place = f"{field}[{i}]"
    if not isinstance(turn, dict):
        raise RecordError(Phrase("{place} is {kind}, expected an object with `from` and `value`", place=place,
                                 kind=kind_of(turn)))
    speaker = _string_field(turn, "from", place=place)
    if speaker not in SHAREGPT_ROLES:
        raise RecordError(Phrase("unknown role {role} (`from`) in {place}; allowed: {roles}", role=repr(speaker),
                                 place=place, roles=", ".join(SHAREGPT_ROLES)))
    return {"role": SHAREGPT_ROLES[speaker], "content": _string_field(turn, "value", place=place)}


def _turns(value: Any, field: str, *, sharegpt: bool | None) -> list[dict[str, Any]]:
    """Validated chat turns; `sharegpt` None decides from the first turn (a `from` field)."""
    turns = _turn_list(value, field)
    if sharegpt is None:
        sharegpt = isinstance(turns[0], dict) and "from" in turns[0] and "role" not in turns[0]
    if not sharegpt and _plain_turns(turns):
        return turns
    make = _sharegpt_turn if sharegpt else _role_turn
    return [make(turn, field, i) for i, turn in enumerate(turns)]


def _chat(record: dict[str, Any], columns: ColumnMap, *, sharegpt: bool) -> dict[str, Any]:
    """Chat turns (messages, ShareGPT or a mapped field), a system column prepended, `tools` kept."""
    roles = columns.roles
    field = roles.get("messages") or "messages"
    explicit = field not in ("messages", "conversations")
    messages = _turns(record[field], field, sharegpt=None if explicit else sharegpt)
    if "system" in roles:
        system = _optional_string(record, roles["system"])
        if system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system}, *messages]
    _require_assistant(messages, field)
    example: dict[str, Any] = {"messages": messages}
    if "tools" in record:
        tools = _tools(record)
        if tools is not None:
            example["tools"] = tools
    return example


def _tools(record: dict[str, Any]) -> list[Any] | None:
    """The record's tool definitions (a list, or a JSON string of one), else None."""
    tools = record.get("tools")
    if tools is None or tools == "":
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except (json.JSONDecodeError, RecursionError):
            raise RecordError(Phrase("`tools` is a string but not JSON; give a list of tool definitions")) from None
    if not isinstance(tools, list):
        raise RecordError(Phrase("`tools` must be a list of tool definitions, got {kind}", kind=kind_of(tools)))
    return tools


def _instruction(record: dict[str, Any], columns: ColumnMap) -> dict[str, Any]:
    """Instruction data: the prompt (+ input) as the user turn, the response as the assistant turn; when the
    prompt is a list of turns, TRL's conversational prompt-completion."""
    prompt_field, response_field = columns.get("prompt") or "prompt", columns.get("response") or "response"
    if isinstance(record.get(prompt_field), list):
        prompt = _turns(record[prompt_field], prompt_field, sharegpt=None)
        completion = _turns(record.get(response_field), response_field, sharegpt=None)
        _require_assistant(completion, response_field)
        return {"prompt": prompt, "completion": completion}
    prompt_text = _string_field(record, prompt_field)
    extra = _optional_string(record, columns.get("input"))
    response = _string_field(record, response_field)
    if not response.strip():
        raise RecordError(Phrase("no assistant turn to learn from: `{field}` is empty", field=response_field))
    user = f"{prompt_text}\n\n{extra}" if extra else prompt_text
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": response}]
    system = _optional_string(record, columns.get("system"))
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


def _prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    """Prompt/completion strings (TRL's standard format): the completion is what is learned."""
    prompt = _string_field(record, "prompt")
    completion = _string_field(record, "completion")
    if not completion.strip():
        raise RecordError(Phrase("nothing to learn from: `completion` is empty"))
    return {"prompt": prompt, "completion": completion}


def _text(record: dict[str, Any], field: str) -> dict[str, Any]:
    """Plain text: one non-empty string."""
    text = _string_field(record, field)
    if not text.strip():
        raise RecordError(Phrase("empty `{field}`: nothing to learn from", field=field))
    return {"text": text}
