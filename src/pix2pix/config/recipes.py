"""Training recipes: named sets of defaults that `--recipe` lays under the flags.

`paper` is the paper's recipe (the field defaults, nothing changed). `improved` is the
combination of options the screening ablation in docs/QUALITY.md measured best on
facades; it only sets options, so every flag (or config-file setting) given beside
`--recipe improved` still wins.
"""

from __future__ import annotations

from typing import Any

from pix2pix.config.fields import flag_name
from pix2pix.config.run import RunConfig

RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "improved": {  # the three best single options of docs/ablation_64.md (combination: to measure)
        "model": {"upsample": "resize-conv"},
        "train": {"ema_decay": 0.999, "augment": "translation,cutout,color"},
    },
}


def recipe_flags(recipe: str) -> str:
    """The flags `recipe` stands for, as a user would type them ("" for paper)."""
    parts = []
    for section in RECIPES[recipe].values():
        for name, value in section.items():
            if value is True:
                parts.append(flag_name(name))
            else:
                parts.append(f"{flag_name(name)} {value}")
    return " ".join(parts)


def describe_recipes() -> str:
    """For `pix2pix train --help`: what each recipe sets."""
    lines = ["recipes (--recipe NAME; any flag given beside it wins):"]
    lines.append("  paper     the paper's recipe: the defaults shown above")
    for name in RECIPES:
        if name != "paper":
            lines.append(f"  {name:<9} {recipe_flags(name)} (measured in docs/QUALITY.md)")
    return "\n".join(lines)


def apply_recipe(config: RunConfig, recipe: str) -> RunConfig:
    """`config` with `recipe`'s settings (and the recipe recorded)."""
    settings = RECIPES[recipe]
    train = {**settings.get("train", {}), "recipe": recipe}
    return config.replace(**{**settings, "train": train})


def with_recipe(
    settings: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]]
) -> RunConfig:
    """The config a new run trains with: the defaults, the recipe (named in `overrides`,
    else in `settings`, else paper), a config file's `settings`, then `overrides` (flags)."""
    named = {**settings.get("train", {}), **overrides.get("train", {})}
    config = apply_recipe(RunConfig(), named.get("recipe", "paper"))
    return config.replace(**settings).replace(**overrides)
