"""Errors a user can cause and fix: one line naming the file or value, and the fix.

The CLI prints them without a traceback and exits with status 2. Everything else is a bug
and keeps its traceback.

A `ConfigError` names settings by `field_ref(name, flag)`: read from Python, the message
says the argument name (`crop_size`); the CLI prints the flag instead (`--crop-size`).
"""

from __future__ import annotations

import re

_PREFIX = f"{__name__}.UserError: "
_MARK = "\x1f"  # ASCII unit separator: never part of a path, a value or a message
_REF = re.compile(f"{_MARK}([^{_MARK}]*){_MARK}([^{_MARK}]*){_MARK}")


def field_ref(name: str, flag: str) -> str:
    """A setting inside a ConfigError message: shown as `name`, or as `flag` by the CLI."""
    return f"{_MARK}{name}{_MARK}{flag}{_MARK}"


def setting(flag: str) -> str:
    """A setting inside any UserError message, named by its flag: `--val-metric` is shown
    as `val_metric` from Python, `--no-sync-bn` as `sync_bn=False`. Library errors name
    every setting this way (or by `config.ref`), never by a bare flag."""
    name = flag.removeprefix("--").replace("-", "_")
    if name.startswith("no_"):
        return field_ref(f"{name[3:]}=False", flag)
    return field_ref(name, flag)


def render(text: str, *, flags: bool) -> str:
    """`text` with its field references shown as flags (the CLI) or as names (Python)."""
    return _REF.sub(lambda m: m.group(2 if flags else 1), text)


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
        self.raw = message
        super().__init__(render(message, flags=False))

    def for_cli(self) -> str:
        """The message as the command line shows it: settings named by their flags."""
        return render(self.raw, flags=True)


class ConfigError(UserError, ValueError):
    """An invalid configuration value (raised while building a config)."""
