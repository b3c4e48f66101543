"""The one exception type for mistakes a person can fix (bad file, bad flag, unknown model)."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: shown as one or two lines, exit status 2, never a traceback.

    The message says what is wrong, where (file:line or flag name) and, where useful, what to do.
    """

    exit_code = 2
