"""Record shapes: which one a record looks like, whether it is valid, and its normalised form for training.

Normalised forms (what `iter_examples` yields and TRL's SFTTrainer accepts):
- `messages`, `sharegpt`, `alpaca` -> {"messages": [{"role": ..., "content": ...}, ...]}
- `prompt_completion` -> {"prompt": str, "completion": str}
- `text` -> {"text": str}
"""

from __future__ import annotations

from typing import Any

SHAPES: dict[str, str] = {
    "messages": "`messages`: a list of {role, content} turns",
    "sharegpt": "ShareGPT: `conversations`, a list of {from, value} turns",
    "alpaca": "alpaca: `instruction`, optional `input`, `output`",
    "prompt_completion": "`prompt` and `completion` strings",
    "text": "a plain `text` field",
}
"""Every supported record shape, with a short description of its fields."""

CHAT_ROLES = ("system", "user", "assistant", "tool")
"""Roles accepted in a `messages` conversation."""

_ROLE_SET = frozenset(CHAT_ROLES)

SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "tool": "tool",
}
"""ShareGPT `from` values and the chat role each becomes."""


class RecordError(ValueError):
    """A record that cannot be used for training; the message says what is wrong."""


def classify(record: Any) -> str | None:
    """The shape a record looks like from its keys (None when it matches none)."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record or ("output" in record and "input" in record):
        return "alpaca"
    if "prompt" in record or "completion" in record:
        return "prompt_completion"
    if "text" in record:
        return "text"
    return None


def describe_unknown(record: Any) -> str:
    """Why a record matches no shape."""
    if not isinstance(record, dict):
        return f"record is {_kind(record)}, expected a JSON object"
    keys = ", ".join(sorted(map(str, record))) or "none"
    return (
        "record matches no known shape (messages, conversations, instruction/output, prompt/completion, "
        f"text); its fields: {keys}"
    )


def normalise(record: Any, shape: str) -> dict[str, Any]:
    """Validate `record` as `shape` and return its normalised form; RecordError when it is not valid."""
    if not isinstance(record, dict):
        raise RecordError(f"record is {_kind(record)}, expected a JSON object")
    found = classify(record)
    if found != shape:
        if found is None:
            keys = ", ".join(sorted(map(str, record))) or "none"
            raise RecordError(f"record matches no known shape (its fields: {keys}); the file uses `{shape}` "
                              f"({SHAPES[shape]})")
        raise RecordError(f"record looks like `{found}` but the file uses `{shape}` ({SHAPES[shape]})")
    return _NORMALISERS[shape](record)


def _kind(value: Any) -> str:
    """A JSON type name with its article, for messages."""
    if value is None:
        return "null"
    name = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return name.get(type(value), f"a {type(value).__name__}")


def _string_field(record: dict[str, Any], name: str, *, where: str = "") -> str:
    """A required string field (missing, null or non-string is an error)."""
    if name not in record:
        raise RecordError(f"missing field `{name}`{where}")
    value = record[name]
    if value is None:
        raise RecordError(f"null content: `{name}`{where} is null")
    if not isinstance(value, str):
        raise RecordError(f"`{name}`{where} must be a string, got {_kind(value)}")
    return value


def _turns(record: dict[str, Any], field: str) -> list[Any]:
    """The conversation list of a chat record (not empty)."""
    turns = record[field]
    if turns is None:
        raise RecordError(f"null content: `{field}` is null")
    if not isinstance(turns, list):
        raise RecordError(f"`{field}` must be a list of turns, got {_kind(turns)}")
    if not turns:
        raise RecordError(f"empty conversation: `{field}` has no turns")
    return turns


def _require_assistant(messages: list[dict[str, str]], field: str) -> None:
    """A conversation must contain at least one assistant turn to learn from."""
    if not any(m["role"] == "assistant" for m in messages):
        roles = ", ".join(dict.fromkeys(m["role"] for m in messages))
        raise RecordError(f"no assistant turn to learn from in `{field}` (roles present: {roles})")


def _plain_turns(turns: list[Any]) -> bool:
    """True when every turn is exactly {role: known role, content: str} (the common case, checked fast)."""
    for turn in turns:
        if type(turn) is not dict or len(turn) != 2:
            return False
        role, content = turn.get("role"), turn.get("content")
        if type(content) is not str or role not in _ROLE_SET:
            return False
    return True


def _messages(record: dict[str, Any]) -> dict[str, Any]:
    """`messages` shape: roles system/user/assistant/tool, string content."""
    turns = _turns(record, "messages")
    if _plain_turns(turns):
        if not any(turn["role"] == "assistant" for turn in turns):
            _require_assistant(turns, "messages")
        return {"messages": turns}
    out: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        where = f" in messages[{i}]"
        if not isinstance(turn, dict):
            raise RecordError(f"messages[{i}] is {_kind(turn)}, expected an object with `role` and `content`")
        role = _string_field(turn, "role", where=where)
        if role not in CHAT_ROLES:
            raise RecordError(f"unknown role {role!r}{where}; allowed roles: {', '.join(CHAT_ROLES)}")
        if turn.get("content") is None and turn.get("tool_calls"):  # an assistant turn that only calls tools
            out.append({"role": role, "content": ""})
            continue
        out.append({"role": role, "content": _string_field(turn, "content", where=where)})
    _require_assistant(out, "messages")
    return {"messages": out}


def _sharegpt(record: dict[str, Any]) -> dict[str, Any]:
    """ShareGPT shape: `from` in human/gpt/system (or user/assistant/tool), text in `value`."""
    out: list[dict[str, str]] = []
    for i, turn in enumerate(_turns(record, "conversations")):
        where = f" in conversations[{i}]"
        if not isinstance(turn, dict):
            raise RecordError(f"conversations[{i}] is {_kind(turn)}, expected an object with `from`, `value`")
        speaker = _string_field(turn, "from", where=where)
        if speaker not in SHAREGPT_ROLES:
            allowed = ", ".join(SHAREGPT_ROLES)
            raise RecordError(f"unknown role {speaker!r} (`from`){where}; allowed: {allowed}")
        out.append({"role": SHAREGPT_ROLES[speaker], "content": _string_field(turn, "value", where=where)})
    _require_assistant(out, "conversations")
    return {"messages": out}


def _alpaca(record: dict[str, Any]) -> dict[str, Any]:
    """Alpaca shape: instruction (+ optional input) as the user turn, output as the assistant turn."""
    instruction = _string_field(record, "instruction")
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RecordError(f"`input` must be a string (or empty), got {_kind(extra)}")
    output = _string_field(record, "output")
    if not output.strip():
        raise RecordError("no assistant turn to learn from: `output` is empty")
    user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    system = record.get("system")
    if isinstance(system, str) and system.strip():
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


def _prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    """Prompt/completion shape: two strings; the completion is what is learned."""
    prompt = _string_field(record, "prompt")
    completion = _string_field(record, "completion")
    if not completion.strip():
        raise RecordError("nothing to learn from: `completion` is empty")
    return {"prompt": prompt, "completion": completion}


def _text(record: dict[str, Any]) -> dict[str, Any]:
    """Plain text shape: one non-empty `text` string."""
    text = _string_field(record, "text")
    if not text.strip():
        raise RecordError("empty `text`: nothing to learn from")
    return {"text": text}


_NORMALISERS = {
    "messages": _messages,
    "sharegpt": _sharegpt,
    "alpaca": _alpaca,
    "prompt_completion": _prompt_completion,
    "text": _text,
}


def render_plain(example: dict[str, Any]) -> str:
    """A normalised example as plain text for token counting (no chat template: that needs transformers)."""
    if "messages" in example:
        return "\n".join(f"{m['role']}: {m['content']}" for m in example["messages"])
    if "prompt" in example:
        return str(example["prompt"]) + str(example["completion"])
    return str(example["text"])
