"""User-facing CLI errors: one line saying what was wrong and what to do, never a traceback."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """A mistake the user can fix (bad argument, missing file, unreachable node).

    click prints `Error: <message>` on stderr and exits with `exit_code`.
    """

    exit_code = 2
