"""Training methods, one module each, and the table that names them (`--method`).

Adding a method: its module here (a `Method` subclass: networks, objective, step, the
module inference runs), one entry in `METHODS`, and its tests. Nothing else changes: the
loop, checkpoints, resume, DDP, precision, validation, translate and export read the
table through `method_of`.
"""

from __future__ import annotations

from pix2pix.config import RunConfig, ref
from pix2pix.errors import ConfigError
from pix2pix.methods.base import ExtraInput, Method
from pix2pix.methods.bicyclegan import BicycleGANMethod
from pix2pix.methods.distill import DistillMethod
from pix2pix.methods.oasis import OASISMethod
from pix2pix.methods.pix2pix import Pix2PixMethod
from pix2pix.runtime import Kit

METHODS: dict[str, type[Method]] = {
    "pix2pix": Pix2PixMethod,
    "bicyclegan": BicycleGANMethod,
    "oasis": OASISMethod,
    "distill": DistillMethod,
}


def method_class(name: str) -> type[Method]:
    """The method called `name`; an unknown name is a ConfigError listing the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(
            f"{ref('method')} {name!r} is not valid; choose one of: {', '.join(METHODS)}"
        ) from None


def method_of(config: RunConfig) -> type[Method]:
    """The method a run trains with, or a checkpoint was trained with (its config.json)."""
    return method_class(config.model.method)


__all__ = ["METHODS", "ExtraInput", "Kit", "Method", "method_class", "method_of"]
