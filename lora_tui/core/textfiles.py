"""Reading a text file a person named (a run file, a prompts file) without hanging on a special file.

A FIFO blocks `open` until a writer comes, and /dev/zero never ends: the path is opened without blocking and
checked to be a regular file before anything is read from it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lora_tui.errors import UserError
from lora_tui.i18n import N_, _

_KINDS = ((stat.S_ISFIFO, N_("a FIFO (named pipe)")), (stat.S_ISCHR, N_("a character device")),
          (stat.S_ISBLK, N_("a block device")), (stat.S_ISSOCK, N_("a socket")), (stat.S_ISDIR, N_("a directory")))
"""File types that are not regular files, and how to name them (catalogue messages: `_()` shows them)."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words, in the language shown."""
    return _(next((name for test, name in _KINDS if test(mode)), N_("a special file")))


def read_regular_text(path: str | Path, label: str, noun: str = N_("file")) -> str:
    """The UTF-8 text of a regular file. UserError starting with `label` (e.g. "--prompts FILE") when it is
    missing, a FIFO, a device, a socket or a directory, unreadable, or not UTF-8; `noun` names the file (a
    catalogue message, such as `N_("prompts file")`: each message is one template, the noun shown translated)."""
    p, what = Path(path), _(noun)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(_("{label}: {noun} not found").format(label=label, noun=what)) from None
    except IsADirectoryError:
        raise UserError(_("{label}: is a directory; give a {noun}").format(label=label, noun=what)) from None
    except OSError as exc:
        raise UserError(_("{label}: cannot read ({error})").format(label=label, error=exc.strerror or exc)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserError(_("{label}: is {kind}, not a regular file; give a {noun}").format(
            label=label, kind=kind_of(mode), noun=what))
    with os.fdopen(fd, "rb") as fh:
        try:
            os.set_blocking(fd, True)
            data = fh.read()
        except OSError as exc:
            raise UserError(_("{label}: cannot read ({error})").format(label=label,
                                                                       error=exc.strerror or exc)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(_("{label}: not UTF-8 text; save the {noun} as UTF-8").format(label=label,
                                                                                     noun=what)) from None
