"""Chat templates without transformers: read a model's template from its files and render it as transformers does.

The environment is transformers' (`apply_chat_template`): a sandboxed Jinja environment with trim_blocks and
lstrip_blocks, loop controls, a `tojson` that does not escape HTML, `raise_exception` and `strftime_now`; the
`{% generation %}` tag marks what the assistant says. Rendering returns the text and the character spans inside
generation blocks (the spans transformers tracks for `return_assistant_tokens_mask`).

A model without a chat template (a base model) gets `FALLBACK_TEMPLATE` for chat data: plain `### User:` /
`### Assistant:` headers, the assistant's text and end-of-sequence token inside a generation block. The report
says so, the preview shows it, and training uses it and saves it with the adapter's tokenizer.
jinja2 is imported lazily (it is light; transformers itself depends on it).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lora_tui.errors import UserError
from lora_tui.i18n import N_, Phrase, _

FALLBACK_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{ '### Assistant:\n' }}{% generation %}"
    "{%- if message.get('tool_calls') %}{{ message['tool_calls'] | tojson }}{% endif %}"
    "{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n\n' }}"
    "{%- else %}"
    "{{ '### ' + message['role'] | capitalize + ':\n' + message['content'] + '\n\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '### Assistant:\n' }}{%- endif %}"
)
"""The chat template used when a model has none: `### System:`, `### User:`, `### Tool:` and `### Assistant:`
headers, each turn followed by a blank line, the assistant's text (tool calls as JSON) and end-of-sequence
token inside a generation block, so only they carry the loss."""

FALLBACK_NAME = Phrase("lora-tui fallback template (### User: / ### Assistant:)")
"""How reports name `FALLBACK_TEMPLATE` (a `Phrase`: English in files, translated where shown)."""

GENERATION_OPEN = "\ufdd0"
"""Written where a `{% generation %}` block starts (a Unicode noncharacter: never in real text)."""
GENERATION_CLOSE = "\ufdd1"
"""Written where a `{% generation %}` block ends."""

_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


class TemplateError(ValueError):
    """A chat template that fails on an example (the message, a `Phrase`, names why)."""

    @property
    def message(self) -> str:
        """Why (the Phrase it was raised with)."""
        return self.args[0] if self.args and isinstance(self.args[0], str) else str(self)


@dataclass(frozen=True)
class ChatTemplate:
    """A model's chat template and the special tokens it writes."""

    source: str
    """The template text."""
    bos_token: str = ""
    """The beginning-of-sequence token's text ('' when the model has none)."""
    eos_token: str = ""
    """The end-of-sequence token's text."""
    name: str = Phrase("chat template")
    """Where it came from, for reports: the model's file, or the fallback (a `Phrase`)."""

    @property
    def is_fallback(self) -> bool:
        """True for lora-tui's fallback template."""
        return self.source == FALLBACK_TEMPLATE

    @property
    def marks_generation(self) -> bool:
        """True when the template marks the assistant's text with `{% generation %}`."""
        return _GENERATION_TAG.search(self.source) is not None

    def render(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = False,
               tools: list[Any] | None = None) -> tuple[str, list[tuple[int, int]]]:
        """(text, character spans of the generation blocks) for one conversation."""
        template, context = _compile(self.source)
        try:
            marked = "".join(template.root_render_func(context({
                "messages": messages, "tools": tools, "documents": None, "add_generation_prompt": add_generation_prompt,
                "bos_token": self.bos_token, "eos_token": self.eos_token})))
        except Exception as exc:  # noqa: BLE001 - a template is a program: any failure is the example's problem
            raise TemplateError(Phrase("the chat template fails on this example: {error}", error=str(exc))) from None
        if GENERATION_OPEN not in marked:
            return marked, []
        return _strip_markers(marked)


RESERVED_TEXT = N_("the text holds U+FDD0/U+FDD1 (reserved noncharacters); remove them")
"""Why an example whose text holds the generation markers cannot be rendered."""


def _strip_markers(marked: str) -> tuple[str, list[tuple[int, int]]]:
    """Remove the generation markers, returning the clean text and the spans they enclosed."""
    spans: list[tuple[int, int]] = []
    at = marked.find(GENERATION_OPEN)
    while at >= 0:
        close = marked.find(GENERATION_CLOSE, at)
        after = marked.find(GENERATION_OPEN, at + 1)
        if close < 0 or 0 <= after < close:
            raise TemplateError(Phrase(RESERVED_TEXT))
        shift = 2 * len(spans)
        spans.append((at - shift, close - shift - 1))
        at = after
    text = marked.replace(GENERATION_OPEN, "").replace(GENERATION_CLOSE, "")
    if len(text) != len(marked) - 2 * len(spans):
        raise TemplateError(Phrase(RESERVED_TEXT))
    return text, spans


_OPEN_TAG = re.compile(r"\{%([-+]?)\s*generation\s*([-+]?)%\}")
_CLOSE_TAG = re.compile(r"\{%([-+]?)\s*endgeneration\s*([-+]?)%\}")


def marked_source(source: str) -> str:
    """The template with each `{% generation %}...{% endgeneration %}` made to write the generation markers around
    its body. Each tag becomes `{%L if true %}{{ marker }}{% if true R%}` (closing: `endif`), so its whitespace
    control and trim_blocks/lstrip_blocks act exactly as on the original tag; the output is the original's with
    the markers added (the same text transformers' generation extension tracks, without a macro call per turn)."""
    source = _OPEN_TAG.sub(lambda m: f"{{%{m[1]} if true %}}{{{{ '{GENERATION_OPEN}' }}}}{{% if true {m[2]}%}}",
                           source)
    return _CLOSE_TAG.sub(lambda m: f"{{%{m[1]} endif %}}{{{{ '{GENERATION_CLOSE}' }}}}{{% endif {m[2]}%}}", source)


@functools.lru_cache(maxsize=8)
def _compile(source: str) -> tuple[Any, Callable[[dict[str, Any]], Any]]:
    """The compiled template in transformers' environment and a maker of its render context from the variables
    (the globals copied once, not on every render; cached per template text)."""
    import jinja2
    import jinja2.ext
    from jinja2.runtime import new_context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        template = env.from_string(marked_source(source))
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(_("the model's chat template is not valid Jinja: {error}").format(error=exc)) from None
    base = dict(template.globals)

    def context(variables: dict[str, Any]) -> Any:
        return new_context(env, template.name, template.blocks, {**base, **variables}, shared=True)

    return template, context


def _token_text(value: Any) -> str:
    """A special token from tokenizer_config.json: a string, or an AddedToken dict with `content`."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def load_template(tokenizer_file: Path) -> ChatTemplate:
    """The chat template beside a tokenizer.json (chat_template.jinja, or tokenizer_config.json's
    `chat_template`) with the model's special tokens; `FALLBACK_TEMPLATE` when the model has none."""
    folder = tokenizer_file.parent
    config = _json_object(folder / "tokenizer_config.json")
    tokens = {**_json_object(folder / "special_tokens_map.json"), **config}
    bos, eos = _token_text(tokens.get("bos_token")), _token_text(tokens.get("eos_token"))
    source, name = _template_source(folder, config)
    if source is None:
        return fallback_template(bos, eos)
    return ChatTemplate(source, bos, eos, name)


def _json_object(path: Path) -> dict[str, Any]:
    """A small JSON object file, {} when it is missing or not an object."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _template_source(folder: Path, config: dict[str, Any]) -> tuple[str | None, str]:
    """The template text and the file it came from (the same order of files transformers reads)."""
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8"), Phrase("chat template ({file})", file=jinja_file.name)
    value = config.get("chat_template")
    if isinstance(value, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {d.get("name"): d.get("template") for d in value if isinstance(d, dict)}
        value = named.get("default") or next(iter(named.values()), None)
    if isinstance(value, str) and value.strip():
        return value, Phrase("chat template ({file})", file="tokenizer_config.json")
    return None, ""


def fallback_template(bos_token: str, eos_token: str) -> ChatTemplate:
    """`FALLBACK_TEMPLATE` with the model's special tokens."""
    return ChatTemplate(FALLBACK_TEMPLATE, bos_token, eos_token, FALLBACK_NAME)
