"""Keep the gettext catalogues in step with the code: every message lora-tui can show, and each translation.

    python scripts/i18n_catalogue.py            add new messages to every catalogue (empty, to translate)
    python scripts/i18n_catalogue.py --check    list the messages a catalogue lacks or mistranslates; exit 1

The messages are the literal first arguments of `_()`, `N_()`, `Phrase()`, `ngettext()` and `pgettext()` in
lora_tui (found with `ast`, so a message split over lines is one message), the text of the preset files that
screens and reasons show (guide.toml, practice.toml), and the keys shown through a context (`CONTEXT_MSGIDS`). A
translation must use no placeholder (`{name}`) its English does not have.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import polib
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lora_tui"
sys.path.insert(0, str(ROOT))

from lora_tui.i18n import DOMAIN, LANGUAGES, catalogue_path  # noqa: E402

CONTEXT_MSGIDS: dict[str, tuple[str, ...]] = {
    "guide table": ("defaults", "task", "data-size", "resource"),
    "resource tier": ("low", "standard", "high"),
    "alpha style": ("conservative", "standard", "aggressive"),
    "pattern": ("minimal", "standard", "maximum"),
    "memory verdict": ("fits", "tight", "will not fit", "unknown"),
    "source kind": ("guide table", "guide worked example", "guide training script", "guide troubleshooting",
                    "common LoRA practice", "lora-tui", "your choice"),
    "value source": ("default", "recommended", "given", "config"),
    "keep": ("best", "last"),
    "run state": ("starting", "running", "finished", "failed", "stopped", "oom", "lost", "unknown", "saved",
                  "partial"),
    "run mode": ("new run", "resume run", "overwrite run"),
}
"""Words shown through `pgettext(context, key)` with a key known only at run time."""

PRESET_FIELDS = {
    "guide.toml": ("title", "what", "why", "label", "section", "pattern_why", "where", "symptom", "example"),
    "practice.toml": ("sources", "lr_why", "pattern_why", "epochs_why", "title", "guide", "truth", "symptom", "why",
                      "example"),
}
"""The preset files' fields a person reads (translated where they are shown)."""

PRESETS_SHOWN_FROM = {"guide.toml": ("defaults", "tasks", "data_sizes", "resources", "patterns", "worked_examples",
                                     "troubleshooting"),
                      "practice.toml": ("advice_practice", "guide_errata", "troubleshooting", "first_remedies")}
"""The tables of each preset file whose text is shown (the rest stays in English for now)."""

TEXTUAL_MSGIDS = ("Quit", "Quit the app and return to the command prompt.", "Focus Next", "Focus Previous",
                  "Copy selected text", "palette", "Open the command palette")
"""Textual's own binding descriptions: `translate_bindings` shows every binding of a lora-tui screen in the
current language, Textual's included."""

_FUNCS = {"_": 1, "N_": 1, "Phrase": 1, "ngettext": 2, "pgettext": 2}


def code_messages(root: Path = PACKAGE) -> Iterator[tuple[str | None, str, str | None, str]]:
    """(context, msgid, msgid_plural, where) of every literal message in the package."""
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
                continue
            args = node.args
            if len(args) < _FUNCS[node.func.id] or not all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args[:_FUNCS[node.func.id]]):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            values = [a.value for a in args[:_FUNCS[node.func.id]]]  # type: ignore[attr-defined]
            if node.func.id == "pgettext":
                yield values[0], values[1], None, where
            elif node.func.id == "ngettext":
                yield None, values[0], values[1], where
            else:
                yield None, values[0], None, where


def _strings(value: object, fields: tuple[str, ...], key: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and k in fields:
                yield v
            else:
                yield from _strings(v, fields, k)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, fields, key)


def preset_messages() -> Iterator[tuple[str | None, str, str | None, str]]:
    """The shown text of the preset files."""
    for name, fields in PRESET_FIELDS.items():
        doc = tomllib.loads((PACKAGE / "presets" / name).read_text(encoding="utf-8"))
        for table in PRESETS_SHOWN_FROM[name]:
            for text in _strings(doc.get(table, {}), fields):
                yield None, text, None, f"lora_tui/presets/{name} [{table}]"


def context_messages() -> Iterator[tuple[str | None, str, str | None, str]]:
    """The words shown through a context, Textual's binding texts and the model presets' reasons."""
    for context, keys in CONTEXT_MSGIDS.items():
        for key in keys:
            yield context, key, None, "scripts/i18n_catalogue.py CONTEXT_MSGIDS"
    for msgid in TEXTUAL_MSGIDS:
        yield None, msgid, None, "scripts/i18n_catalogue.py TEXTUAL_MSGIDS"
    from lora_tui.core.dataset.report import NO_TOKENIZER_NOTE
    from lora_tui.core.dataset.shapes import SHAPES

    for msgid in (NO_TOKENIZER_NOTE, *SHAPES.values()):  # shown through `_()` by inspect and the Data step
        yield None, msgid, None, "lora_tui/core/dataset (SHAPES, NO_TOKENIZER_NOTE)"
    for path in sorted((PACKAGE / "presets" / "models").glob("*.json")):
        for spec in (json.loads(path.read_text(encoding="utf-8")).get("recommend") or {}).values():
            yield None, spec["why"], None, f"lora_tui/presets/models/{path.name} [recommend]"


def all_messages() -> dict[tuple[str | None, str], tuple[str | None, list[str]]]:
    """(context, msgid) -> (msgid_plural, where it occurs)."""
    found: dict[tuple[str | None, str], tuple[str | None, list[str]]] = {}
    for context, msgid, plural, where in [*code_messages(), *preset_messages(), *context_messages()]:
        if not msgid:
            continue
        entry = found.setdefault((context, msgid), (plural, []))
        entry[1].append(where)
    return found


PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")


def placeholders(text: str) -> set[str]:
    """The `{name}` placeholders of a message (`{{` is a literal brace)."""
    return set(PLACEHOLDER.findall(text.replace("{{", "").replace("}}", "")))


def problems(po: polib.POFile, messages: dict[tuple[str | None, str], tuple[str | None, list[str]]]) -> list[str]:
    """What a catalogue lacks (a message without translation) or gets wrong (an unknown placeholder)."""
    entries = {(e.msgctxt, e.msgid): e for e in po if not e.obsolete}
    out = []
    for (context, msgid), (plural, where) in sorted(messages.items(), key=lambda kv: kv[1][1][0]):
        entry = entries.get((context, msgid))
        text = (entry.msgstr_plural.get(0, "") if plural else entry.msgstr) if entry is not None else ""
        if entry is None or not text or "fuzzy" in entry.flags:
            out.append(f"{where[0]}: untranslated: {msgid[:70]!r}")
        elif placeholders(text) - placeholders(msgid + (plural or "")):
            out.append(f"{where[0]}: unknown placeholder in the translation of {msgid[:50]!r}: "
                       f"{sorted(placeholders(text) - placeholders(msgid))}")
    return out


def update(po: polib.POFile, messages: dict[tuple[str | None, str], tuple[str | None, list[str]]]) -> int:
    """Add the messages the catalogue lacks; returns how many were added."""
    entries = {(e.msgctxt, e.msgid) for e in po}
    added = 0
    for (context, msgid), (plural, where) in messages.items():
        if (context, msgid) in entries:
            continue
        entry = polib.POEntry(msgctxt=context, msgid=msgid, msgid_plural=plural or "", msgstr="",
                              occurrences=[(w.split(":")[0], w.split(":")[1] if ":" in w else "") for w in where[:1]])
        if plural:
            entry.msgstr_plural = {0: ""}
        po.append(entry)
        added += 1
    return added


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list what each catalogue lacks; exit 1 if anything")
    args = parser.parse_args()
    messages = all_messages()
    failed = False
    for lang in LANGUAGES:
        if lang == "en":
            continue
        path = catalogue_path(lang)
        po = polib.pofile(str(path)) if path.exists() else polib.POFile()
        if args.check:
            found = problems(po, messages)
            for line in found:
                print(f"{path.relative_to(ROOT)}: {line}")
            failed |= bool(found)
            continue
        added = update(po, messages)
        po.metadata.setdefault("Content-Type", "text/plain; charset=UTF-8")
        po.metadata.setdefault("Language", lang)
        po.metadata.setdefault("Plural-Forms", "nplurals=1; plural=0;")
        path.parent.mkdir(parents=True, exist_ok=True)
        po.wrapwidth = 0
        po.save(str(path))
        print(f"{path.relative_to(ROOT)}: {added} new message(s), {len(messages)} in all ({DOMAIN})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
