"""Running the CLI in a test: a clean choice of language and the command's exit status and output.

`fresh_language` (autouse where a module imports it) takes away LORA_TUI_LANG and the locale variables, so only
`--lang` chooses, empties the record of messages missing from the catalogue, and checks afterwards that `main()`
left the process's language English, as it found it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lora_tui import i18n
from lora_tui.cli import main


@pytest.fixture(autouse=True)
def fresh_language(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(i18n.ENV_VAR, raising=False)
    for name in i18n.LOCALE_VARS:
        monkeypatch.delenv(name, raising=False)
    i18n.missing.clear()
    yield
    assert i18n.language() == "en"  # main() leaves the process's language as it found it


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `lora-tui ARGV`."""
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err
