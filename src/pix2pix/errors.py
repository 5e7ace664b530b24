"""Errors a user can cause and fix: one line naming the file or value, and the fix.

The CLI prints them without a traceback and exits with status 2. Everything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

_PREFIX = f"{__name__}.UserError: "


class UserError(Exception):
    """A problem with the user's input (path, image, flag value, checkpoint)."""

    def __init__(self, message: str) -> None:
        # A DataLoader worker re-raises our error in the main process as
        # UserError("Caught UserError in DataLoader worker ...\n<traceback>"): keep only
        # the original one-line message, which is the traceback's last line.
        if "Original Traceback" in message:
            last = message.strip().splitlines()[-1]
            for prefix in (_PREFIX, f"{__name__}.ConfigError: "):
                if last.startswith(prefix):
                    last = last[len(prefix) :]
            message = last
        super().__init__(message)


class ConfigError(UserError, ValueError):
    """An invalid configuration value (raised while building a config)."""
