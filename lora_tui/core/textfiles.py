"""Reading a text file a person named (a run file, a prompts file) without hanging on a special file.

A FIFO blocks `open` until a writer comes, and /dev/zero never ends: the path is opened without blocking and
checked to be a regular file before anything is read from it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lora_tui.errors import UserError

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))
"""File types that are not regular files, and how to name them."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_text(path: str | Path, label: str, noun: str = "file") -> str:
    """The UTF-8 text of a regular file. UserError starting with `label` (e.g. "--prompts FILE") when it is
    missing, a FIFO, a device, a socket or a directory, unreadable, or not UTF-8; `noun` names the file."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(f"{label}: {noun} not found") from None
    except IsADirectoryError:
        raise UserError(f"{label}: is a directory; give a {noun}") from None
    except OSError as exc:
        raise UserError(f"{label}: cannot read ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserError(f"{label}: is {kind_of(mode)}, not a regular file; give a {noun}")
    with os.fdopen(fd, "rb") as fh:
        try:
            os.set_blocking(fd, True)
            data = fh.read()
        except OSError as exc:
            raise UserError(f"{label}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{label}: not UTF-8 text; save the {noun} as UTF-8") from None
