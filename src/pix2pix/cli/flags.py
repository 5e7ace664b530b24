"""Flag helpers shared by the subcommands: config fields as flags, the pixel limit, and
argparse with one-line errors."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Literal, get_args, get_origin

from pix2pix.config import SECTIONS, field_docs, flag_name

Subparsers = argparse._SubParsersAction  # what add_subparsers() returns

SECTION_TITLES = {
    "data": "data",
    "model": "networks",
    "train": "training",
    "monitor": "validation and logging",
    "evaluate": "evaluation",
}


def add_config_flags(parser: argparse.ArgumentParser, sections: dict[str, type] = SECTIONS) -> None:
    """One flag per config field, help from the field's docstring; unset flags are absent."""
    for section, cls in sections.items():
        group = parser.add_argument_group(f"{SECTION_TITLES.get(section, section)} options")
        docs = field_docs(cls)
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp = hints[f.name]
            default = f.default if f.default is not MISSING else None
            kwargs: dict[str, Any] = {
                "dest": f"{section}.{f.name}",
                "default": argparse.SUPPRESS,
                "help": docs.get(f.name, "") + _shown(default),
            }
            if get_origin(tp) in (typing.Union, types.UnionType):
                tp = next(a for a in get_args(tp) if a is not type(None))  # X | None -> X
            if tp is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif get_origin(tp) is Literal:
                kwargs["choices"] = get_args(tp)
            else:
                kwargs["type"] = tp
                kwargs["metavar"] = f.name.split("_")[-1].upper()
            if "const" in f.metadata:  # the flag alone means this value: --wandb [PROJECT]
                kwargs.update(nargs="?", const=f.metadata["const"], metavar="PROJECT")
            group.add_argument(flag_name(f.name, f), **kwargs)


def _shown(default: object) -> str:
    """` (default: X)` for --help, nothing where there is no default to show."""
    return "" if default in (None, "") else f" (default: {default})"


def config_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """{'model': {...}, 'data': {...}, ...} of the config flags given."""
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            sections.setdefault(section, {})[name] = value
    return sections


def uses(parser: argparse.ArgumentParser, *, networks: bool = False, images: bool = False) -> None:
    """Say, where a command is registered, what it needs: `networks` (run networks: the
    process-wide backend settings) and `images` (read local image files: every tool below
    it takes --max-image-pixels, added by `add_pixel_limit`)."""
    parser.set_defaults(runs_networks=networks)
    parser.reads_images = images  # type: ignore[attr-defined]


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of every (sub-)subcommand below `parser`."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    return [leaf for a in subs for p in a.choices.values() for leaf in _leaf_parsers(p)]


def add_pixel_limit(sub: Subparsers) -> None:
    from pix2pix.data.files.limits import DEFAULT_MAX_PIXELS

    for command in sub.choices.values():
        if not getattr(command, "reads_images", False):
            continue
        for leaf in _leaf_parsers(command):
            if leaf.prog.endswith(" download"):
                continue
            leaf.add_argument(
                "--max-image-pixels",
                type=int,
                default=DEFAULT_MAX_PIXELS,
                metavar="N",
                help="refuse local images with more pixels than this, before decoding them "
                f"(a decompression-bomb guard; default: {DEFAULT_MAX_PIXELS:,}, about "
                "9459x9459; 0: no limit)",
            )


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `pix2pix train: error: ...; see --help`, exit 2.

    Flags are never matched by prefix (`--epoch 5` is an error, not `--epochs 5`), and an
    unknown flag or command names the nearest known one ("did you mean --epochs?")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # subcommands' parsers too (add_parser)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extra = super().parse_known_args(args, namespace)
        unknown = [a for a in extra if a.startswith("-") and a != "-"]
        if unknown and self._subparsers is None:  # a command's own parser: its flags alone
            self.error(f"unrecognized arguments: {' '.join(extra)}{self._nearest(unknown[0])}")
        return parsed, extra

    def _nearest(self, flag: str) -> str:
        known = [s for s in self._option_string_actions if s.startswith("--")]
        close = difflib.get_close_matches(flag.split("=")[0], known, n=1, cutoff=0.6)
        return f" (did you mean {close[0]}?)" if close else ""

    def error(self, message: str) -> typing.NoReturn:
        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:  # a mistyped command or choice
            choices = re.findall(r"'([^']*)'", bad.group(2))
            close = difflib.get_close_matches(bad.group(1), choices, n=1, cutoff=0.6)
            message += f" (did you mean {close[0]}?)" if close else ""
        print(f"pix2pix: error: {self.prog}: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """--progress/--no-progress, as train and evaluate take it (their config field)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a progress bar (on a terminal)",
    )


def add_log_flags(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """-q/--quiet and -v/--verbose, before or after the command (`pix2pix train -q`); a
    command's copies leave the value alone unless given."""
    default: Any = False if top else argparse.SUPPRESS
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="only print warnings"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="also print debugging messages",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):  # aliases: once
                add_log_flags(command)
