"""Checking and describing config fields: types, choices, ranges, flags, help text.

Errors name a field with `ref(name)`: `crop_size` from Python, `--crop-size` on the
command line (see `pix2pix.errors.field_ref`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
from dataclasses import fields
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pix2pix.errors import ConfigError, field_ref

# Fields marked RUNTIME say *where* and *how often*, not *what* is trained: a resumed run
# may change them; every other field must match the checkpoint.
RUNTIME = {"runtime": True}


# Fields whose flag is not their name in kebab-case (`root` is given as `--data`): the one
# place a flag is renamed, for every config class.
FLAGS = {"root": "--data", "eval_mode": "--eval"}


def flag_name(name: str, f: dataclasses.Field | None = None) -> str:
    """The CLI flag of a config field: `load_size` -> `--load-size`."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def ref(name: str) -> str:
    """A field inside a ConfigError message (its name; its flag on the command line)."""
    return field_ref(name, flag_name(name))


def choice(obj: object, name: str, choices: tuple[object, ...]) -> None:
    """`obj.name` must be one of `choices`."""
    value = getattr(obj, name)
    if value not in choices:
        valid = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{ref(name)} {value!r} is not valid; choose one of: {valid}")


def at_least(obj: object, name: str, low: float) -> None:
    """`obj.name` must be >= `low`."""
    value = getattr(obj, name)
    if value < low:
        raise ConfigError(f"{ref(name)} {value} is out of range; use a value >= {low}")


SEED_MAX = 2**63 - 1  # numpy's and torch's generators both take 0 .. 2**63 - 1


def check_seed(value: int, what: str | None = None) -> None:
    """A seed every generator in the toolkit accepts, or a ConfigError naming `what`
    (default: the `seed` setting)."""
    if not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{what or ref('seed')} {value} is out of range; use 0 <= seed < 2**63")


@functools.cache
def _resolved_types(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _is_a(value: object, tp: Any) -> bool:
    """Whether `value` (from JSON or Python) fits the field type `tp`."""
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return not isinstance(tp, type) or isinstance(value, tp)


def check_fields(obj: object) -> None:
    """Every field has its declared type (JSON configs can hold anything) and every
    Literal field one of its choices; a ConfigError names the field and the value."""
    for f in fields(obj):  # type: ignore[arg-type]
        tp = _resolved_types(type(obj))[f.name]
        value = getattr(obj, f.name)
        args = get_args(tp)
        if get_origin(tp) in (Union, UnionType) and type(None) in args:
            if value is None:
                continue
            tp = next(a for a in args if a is not type(None))  # X | None -> X
        if get_origin(tp) is Literal:
            choice(obj, f.name, get_args(tp))
        elif not _is_a(value, tp):
            raise ConfigError(f"{ref(f.name)} {value!r} is not valid; give {_TYPE_NAMES[tp]}")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, as one line of text."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for stmt, nxt in itertools.pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs
