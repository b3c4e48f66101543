"""The one translation function of lora-tui, and the choice of language.

English is the source text: a message is written in English in the code, passed through `_()` (or `ngettext`
for a count, `pgettext` where one English word means two things), and looked up in the gettext catalogue
`lora_tui/locale/LANG/LC_MESSAGES/lora_tui.po`. A message with values uses named placeholders and `.format()`
after the lookup, so a translation may put them in any order: `_("{count} examples").format(count=n)`.

The catalogue is read at run time with polib (pure Python, no compile step: a fresh clone, an editable install
and a wheel all read the same `.po` file), once, and only when the language is not English: an English session
imports nothing and reads nothing.

The language: `--lang` (`lang_option`), else `LORA_TUI_LANG`, else the TUI's remembered choice, else the locale
(`LC_ALL`, `LC_MESSAGES`, `LANG`, the first one set; `ja...` is Japanese), else English (`choose_language`).
JSON output, flag names, file formats and run files are English whatever the language (`english()`). Text a core
object keeps and hands on (a data report's notes and problems, an adapter's problems, NVML's status) is a `Phrase`:
English as data, in the current language where it is shown.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from lora_tui.errors import UserError

LANGUAGES = ("en", "ja")
"""The languages lora-tui speaks; `en` is the source text."""

LANGUAGE_NAMES = {"en": "English", "ja": "日本語"}
"""Each language in its own words (the command palette offers them so)."""

ENV_VAR = "LORA_TUI_LANG"
"""The variable that chooses the language when no `--lang` is given."""

LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")
"""The locale variables, in POSIX order: the first one set decides."""

DOMAIN = "lora_tui"
"""The gettext domain: the catalogue's file name."""

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
"""Where the catalogues live (package data)."""

_language = "en"
_override: ContextVar[str | None] = ContextVar("lora_tui_language", default=None)
_catalogues: dict[str, _Catalogue] = {}

missing: set[tuple[str, str]] = set()
"""(language, msgid) of every message asked for that its catalogue lacks (the tests read it); shown in English."""


class _Catalogue:
    """One language's messages: msgid -> msgstr, (context, msgid) -> msgstr, and the plural forms."""

    def __init__(self, path: Path) -> None:
        import polib  # only when a language other than English is used

        self.messages: dict[str, str] = {}
        self.contexts: dict[tuple[str, str], str] = {}
        self.plurals: dict[str, str] = {}
        for entry in polib.pofile(str(path)):
            if entry.obsolete or "fuzzy" in entry.flags:
                continue
            if entry.msgid_plural:
                form = entry.msgstr_plural.get(0, "")
                if form:
                    self.plurals[entry.msgid] = form
            elif entry.msgstr:
                if entry.msgctxt:
                    self.contexts[(entry.msgctxt, entry.msgid)] = entry.msgstr
                else:
                    self.messages[entry.msgid] = entry.msgstr


def catalogue_path(lang: str) -> Path:
    """The `.po` file of a language."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _catalogue(lang: str) -> _Catalogue:
    cat = _catalogues.get(lang)
    if cat is None:
        cat = _catalogues[lang] = _Catalogue(catalogue_path(lang))
    return cat


def language() -> str:
    """The language messages are shown in now."""
    return _override.get() or _language


def set_language(lang: str) -> None:
    """Show messages in `lang` from now on (the whole process)."""
    global _language
    _language = _checked(lang, "language")


@contextmanager
def using(lang: str) -> Iterator[None]:
    """Messages in `lang` inside the block (this thread and context only)."""
    token = _override.set(_checked(lang, "language"))
    try:
        yield
    finally:
        _override.reset(token)


@contextmanager
def english() -> Iterator[None]:
    """Messages in English inside the block: what JSON output and run files hold."""
    with using("en"):
        yield


def _(msgid: str) -> str:
    """`msgid` in the current language (itself in English, or when the catalogue lacks it); a `Phrase` is shown
    in the current language with its values."""
    if isinstance(msgid, Phrase):
        return msgid.shown()
    lang = language()
    if lang == "en":
        return msgid
    found = _catalogue(lang).messages.get(msgid)
    if found is None:
        missing.add((lang, msgid))
        return msgid
    return found


def pgettext(context: str, msgid: str) -> str:
    """`msgid` in the current language, where the same English word means different things (`context` tells)."""
    lang = language()
    if lang == "en":
        return msgid
    found = _catalogue(lang).contexts.get((context, msgid))
    if found is None:
        missing.add((lang, f"{context}\x04{msgid}"))
        return msgid
    return found


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for `n` of something (format it with `count=n` afterwards)."""
    lang = language()
    if lang == "en":
        return singular if n == 1 else plural
    found = _catalogue(lang).plurals.get(singular)
    if found is None:
        missing.add((lang, singular))
        return singular if n == 1 else plural
    return found


class Phrase(str):
    """A message kept in English and shown in the current language: `Phrase("{count} files", count=3)`.

    The string itself is the English text, which JSON output, run files and comparisons see; formatting it into
    a message (`f"{p}"`, `_("... {p}").format(p=p)`) or `_(p)` gives it in the language shown then. It is for text
    a core object keeps and hands on (a data report's notes and problems, made while a screen in one language
    inspects and written to a run file in English); a message only shown is translated where it is made."""

    msgid: str
    values: dict[str, object]
    context: str | None = None

    def __new__(cls, msgid: str, **values: object) -> Phrase:
        plain = {k: str.__str__(v) if isinstance(v, Phrase) else v for k, v in values.items()}
        self = super().__new__(cls, msgid.format(**plain) if values else msgid)
        self.msgid, self.values = msgid, values
        return self

    @classmethod
    def of(cls, context: str, msgid: str) -> Phrase:
        """A word shown through `pgettext(context, msgid)` (a run state, a tier) kept as a Phrase."""
        self = cls(msgid)
        self.context = context
        return self

    def shown(self) -> str:
        """The message in the current language, its values (Phrases too) formatted into it."""
        msgid = str.__str__(self.msgid)
        text = pgettext(self.context, msgid) if self.context else _(msgid)
        return text.format(**self.values) if self.values else text

    def __format__(self, spec: str) -> str:
        return format(self.shown(), spec)


def N_(msgid: str) -> str:
    """Mark a message for the catalogue where it is defined (a table of labels); `_()` translates it when shown."""
    return msgid


def _checked(lang: str, where: str) -> str:
    value = lang.strip().lower()
    if value not in LANGUAGES:
        raise UserError(_("{where} {lang}: unknown; choose one of {choices}").format(
            where=where, lang=repr(lang), choices=", ".join(LANGUAGES)))
    return value


def locale_language(environ: Mapping[str, str]) -> str:
    """The language of the locale: the first of LC_ALL, LC_MESSAGES, LANG that is set; Japanese when it starts
    with `ja`, else English."""
    for name in LOCALE_VARS:
        value = environ.get(name, "")
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


def choose_language(flag: str | None = None, *, environ: Mapping[str, str] | None = None,
                    remembered: str | None = None) -> str:
    """The language to use: `--lang`, else LORA_TUI_LANG, else the TUI's remembered choice, else the locale,
    else English. An unknown `--lang` or LORA_TUI_LANG is a UserError naming it."""
    env = os.environ if environ is None else environ
    if flag:
        return _checked(flag, "--lang")
    if env.get(ENV_VAR, "").strip():
        return _checked(env[ENV_VAR], ENV_VAR)
    if remembered in LANGUAGES:
        return str(remembered)
    return locale_language(env)


def lang_option(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """The value of `--lang X` / `--lang=X` anywhere on a command line (the last one wins) and the command line
    without it: the language must be known before any parser (whose help is translated) is built."""
    lang: str | None = None
    rest: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        if arg == "--":
            rest += items[i:]
            break
        if arg == "--lang":
            if i + 1 >= len(items):
                raise UserError(_("--lang: give a language ({choices})").format(choices=", ".join(LANGUAGES)))
            lang = _checked(items[i + 1], "--lang")
            i += 2
            continue
        if arg.startswith("--lang="):
            lang = _checked(arg.split("=", 1)[1], "--lang")
        else:
            rest.append(arg)
        i += 1
    return lang, rest
