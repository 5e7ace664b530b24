"""Training recipes: named sets of defaults that `--recipe` (`TrainConfig.recipe`) lays
under the other settings.

`paper` is the paper's recipe (the field defaults, nothing changed). `improved` is the
combination of options the screening ablation in docs/QUALITY.md measured best on
facades. A recipe is resolved where a config is built (`RunConfig.__post_init__`), so
it means the same from Python, a config file and the command line: it fills the
settings left at the paper's values, and every setting given beside it wins.

A setting given explicitly at the paper's value, against the recipe (`--recipe improved
--ema-decay 0`, or the architecture an `--init-from` checkpoint brings), also wins; the
config then records the paper recipe with the recipe's other options written out
(`explicit_recipe`), since a recipe name cannot record an exception and config.json
must read back as the run that trained.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pix2pix.config.fields import flag_name, ref
from pix2pix.config.sections import SECTIONS
from pix2pix.errors import ConfigError

RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "improved": {  # the three best single options of docs/ablation_64.md (combination: to measure)
        "model": {"upsample": "resize-conv"},
        "train": {"ema_decay": 0.999, "augment": "translation,cutout,color"},
    },
    # label maps (need --labels): SPADE's pairing (Park et al. 2019, sec. 4 and appendix
    # A): its generator, a 2-scale PatchGAN with instance norm and spectral norm, hinge
    # loss, feature matching 10, Adam(1e-4 G, 4e-4 D, betas 0, 0.999). Its VGG loss needs
    # downloaded weights: pix2pix's L1 (lambda_l1) stands in for it. Width: ngf 32 (the
    # paper's trunk is 16 x 64 channels), which keeps a CPU step within 3x the paper
    # recipe's at 128x128 (benchmarks/labels.py).
    "spade": {
        "model": {
            "generator": "spade",
            "ngf": 32,
            "d_scales": 2,
            "norm": "instance",
            "spectral_norm": True,
        },
        "train": {
            "gan_loss": "hinge",
            "feature_matching": 10.0,
            "lr": 1e-4,
            "lr_d": 4e-4,
            "beta1": 0.0,
        },
    },
    "oasis": {"model": {"method": "oasis"}},  # the method's defaults below
}


LABEL_RECIPES = ("spade", "oasis")  # recipes for label-map inputs


# A method's own defaults, laid under the settings like a recipe's, so that `--method
# NAME` alone trains the method as its authors did (any setting given beside it wins).
# bicyclegan: the options of the official junyanz/BicycleGAN code's bicycle_gan model
# (options/base_options.py, train_options.py, models/bicycle_gan_model.py): nz 8, z added
# at every U-Net level, instance norm, no dropout, an unconditional D of 2 scales (its
# basic_256_multi: n_layers 3, num_D 2) for each path, least-squares GAN, lambda_L1 10,
# batch 2 (one image per path); lambda_kl 0.01 and lambda_z 0.5 are the fields' defaults.
METHOD_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "bicyclegan": {
        "model": {
            "nz": 8,
            "where_add": "all",
            "norm": "instance",
            "dropout": 0.0,
            "conditional": False,
            "d_scales": 2,
        },
        "train": {"gan_loss": "lsgan", "lambda_l1": 10.0, "batch_size": 2},
    },
    # oasis: the paper's settings (Schonfeld et al. 2021, sec. 4): SPADE G with a 64-d code,
    # the segmentation D, Adam(1e-4 G, 4e-4 D, betas 0, 0.999), LabelMix 10 (the field's
    # default), no reconstruction or VGG term; the paper's G weight average is 0.9999 over
    # 100k+ steps: 0.999 here, for runs of thousands. G's norm: instance (the paper's
    # synchronised batch norm over 20-32 images is instance norm at batch 1). Widths: ngf
    # and ndf 32 (the paper's D starts at 128 channels at 256x256), for the CPU budget.
    "oasis": {
        "model": {
            "generator": "spade",
            "ngf": 32,
            "ndf": 32,
            "discriminator": "oasis",
            "nz": 64,
            "norm": "instance",
            "conditional": False,
        },
        "train": {"lr": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "lambda_l1": 0.0, "ema_decay": 0.999},
    },
}


def paper_value(section: str, name: str) -> Any:
    """The paper's value (the field default) of setting `name` of `section`."""
    return next(f.default for f in dataclasses.fields(SECTIONS[section]) if f.name == name)


def _flag(name: str, value: Any) -> str:
    if value is False:
        return "--no-" + flag_name(name).removeprefix("--")
    return flag_name(name) if value is True else f"{flag_name(name)} {value}"


def recipe_flags(recipe: str) -> str:
    """The flags `recipe` stands for, as a user would type them ("" for paper); a recipe
    that names a method also stands for the method's defaults."""
    settings = RECIPES[recipe]
    method = settings.get("model", {}).get("method")
    flags = [_flag(n, v) for s in settings.values() for n, v in s.items()]
    if method:
        flags += [
            _flag(n, v) for s in METHOD_DEFAULTS.get(method, {}).values() for n, v in s.items()
        ]
    return " ".join(flags)


def describe_recipes() -> str:
    """For `pix2pix train --help`: what each recipe sets."""
    lines = ["recipes (--recipe NAME; any flag given beside it wins):"]
    lines.append("  paper     the paper's recipe: the defaults shown above")
    for name in RECIPES:
        if name != "paper":
            labels = " (label maps: with --labels)" if name in LABEL_RECIPES else ""
            lines.append(f"  {name:<9} {recipe_flags(name)}{labels} (measured in docs/QUALITY.md)")
    return "\n".join(lines)


def fill_recipe(parts: dict[str, Any], recipe: str) -> dict[str, Any]:
    """The config sections `parts` ({name: ModelConfig, ...}) with `recipe`'s settings,
    then the defaults of the method they name (`METHOD_DEFAULTS`), in the fields that
    hold the paper's value."""
    out = _fill(parts, RECIPES[recipe], f"{ref('recipe')} {recipe}")
    method = out["model"].method
    return _fill(out, METHOD_DEFAULTS.get(method, {}), f"{ref('method')} {method}")


def _fill(parts: dict[str, Any], settings: dict[str, dict[str, Any]], what: str) -> dict[str, Any]:
    out = dict(parts)
    for section, values in settings.items():
        part = out[section]
        fill = {n: v for n, v in values.items() if getattr(part, n) == paper_value(section, n)}
        if not fill:
            continue
        try:
            out[section] = dataclasses.replace(part, **fill)
        except ConfigError as exc:
            given = ", ".join(f"{ref(n)} {v}" for n, v in fill.items())
            raise ConfigError(f"{what} sets {given}: {exc.raw}") from None
    return out


def explicit_recipe(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`raw` ({section: {field: value}} as given: a config file, the flags, a config.json)
    and the settings in it that turn an option of its recipe back to the paper's value.

    With none, `raw` itself. Otherwise the settings with the recipe's other options
    written out and the recipe recorded as paper: then they mean the same without it."""
    train = raw.get("train")
    recipe = train.get("recipe", "paper") if isinstance(train, dict) else "paper"
    undone = [
        _flag(name, raw[section][name])
        for section, settings in RECIPES.get(recipe, {}).items()
        if isinstance(raw.get(section), dict)
        for name, value in settings.items()
        if name in raw[section]
        and raw[section][name] == paper_value(section, name)
        and raw[section][name] != value
    ]
    if not undone:
        return raw, []
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for section, settings in RECIPES[recipe].items():
        out[section] = {**settings, **out.get(section, {})}
    out["train"]["recipe"] = "paper"
    return out, undone
