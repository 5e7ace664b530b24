"""Fine-tuning (`--init-from DIR`): a new run that starts from another checkpoint's weights.

The architecture (the whole model section) comes from DIR; a flag or config-file setting
that contradicts it is an error that names both values. G starts from DIR's own weights
(not its moving average), each other module of the method from DIR's when DIR has
it (an imported generator alone gets a freshly initialised D), and everything else
is new: optimisers, learning-rate schedule, step count, the EMA average (from G).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pix2pix.checkpoint import find_checkpoint, load_weights, module_file, read_meta
from pix2pix.config import ModelConfig, RunConfig
from pix2pix.config.fields import ref
from pix2pix.config.run import with_recipe
from pix2pix.errors import UserError, setting

log = logging.getLogger(__name__)


def architecture_of(init_from: str | Path) -> tuple[Path, ModelConfig]:
    ckpt = find_checkpoint(Path(init_from))
    saved, _ = read_meta(ckpt)
    return ckpt, saved.model


def with_architecture(config: RunConfig, given: dict[str, Any]) -> RunConfig:
    """`config` with the model section of `config.train.init_from`; `given` (the model
    settings the user gave) must agree with it.

    The checkpoint's architecture counts as given explicitly: where it contradicts the
    recipe (`--recipe improved` on a transposed-conv U-Net) it wins, and the run records
    what it trains (`with_recipe`: the paper recipe with the recipe's other options) rather
    than a recipe it does not follow; a refusal would deny fine-tuning with EMA and
    DiffAugment, which need no particular architecture."""
    ckpt, model = architecture_of(config.train.init_from)
    for name, value in given.items():
        if getattr(model, name) != value:
            raise UserError(
                f"{ref(name)} {value} conflicts with {setting('--init-from')} {ckpt} "
                f"({ref(name)} {getattr(model, name)}): a fine-tuned run keeps the "
                "architecture of the checkpoint it starts from; drop the flag"
            )
    return with_recipe(config.to_dict(), {"model": asdict(model)})


def start_from(trainer: Any, init_from: str | Path) -> None:
    """Load DIR's G (and D, if it has one) into a new run's `trainer`."""
    ckpt, model = architecture_of(init_from)
    if asdict(model) != asdict(trainer.config.model):
        raise UserError(
            f"{setting('--init-from')} {ckpt}: the run's model settings differ from the "
            "checkpoint's; "
            f"take them from it (pix2pix train {setting('--init-from')} does)"
        )
    method = trainer.method
    loaded, new = [], []
    for name, module in method.modules.items():
        file = module_file(ckpt, name)
        if name == method.inference or file.exists():  # the inference module must be there
            load_weights(module, file)
            loaded.append(name)
        else:
            new.append(f"a new {name}")
    log.info("starting from %s (%s)", ckpt, "; ".join([" and ".join(loaded), *new]))
    if trainer.ema is not None:
        trainer.ema.module.load_state_dict(trainer.g.state_dict())
