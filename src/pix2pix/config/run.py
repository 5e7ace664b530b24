"""A whole run's configuration: the four sections, JSON round trip, config files."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pix2pix.config.fields import ref
from pix2pix.config.recipes import RECIPES, explicit_recipe, fill_recipe, recipe_flags
from pix2pix.config.sections import (
    SECTIONS,
    DataConfig,
    ModelConfig,
    MonitorConfig,
    TrainConfig,
)
from pix2pix.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_labels(model: ModelConfig, data: DataConfig) -> ModelConfig:
    """The label settings made whole: palette labels take the palette's class count,
    `spade` the depth of the crop size; the oasis D goes with the oasis method only."""
    from pix2pix.palette import parse_palette

    if (model.discriminator == "oasis") != (model.method == "oasis"):
        raise ConfigError(
            f"{ref('discriminator')} oasis goes with {ref('method')} oasis (and only it); "
            f"use both or neither"
        )
    changes: dict[str, Any] = {}
    if model.generator == "spade":  # the largest spade_<2^d> that fits the crop
        side = min(1024, max(32, 2 ** (max(data.crop_size, 1).bit_length() - 1)))
        changes["generator"] = f"spade_{side}"
    if model.labels == "palette":
        if not data.palette:
            raise ConfigError(f"{ref('labels')} palette needs {ref('palette')} (a preset or JSON)")
        classes = parse_palette(data.palette).num_classes
        if model.num_classes not in (None, classes):
            raise ConfigError(
                f"{ref('num_classes')} {model.num_classes} disagrees with the palette's "
                f"{classes} colours; leave it out"
            )
        changes["num_classes"] = classes
    elif model.labels == "index" and model.num_classes is None:
        raise ConfigError(f"{ref('labels')} index needs {ref('num_classes')}")
    return dataclasses.replace(model, **changes) if changes else model


@dataclass(frozen=True)
class RunConfig:
    """A whole training run: networks, data and optimisation.

    `train.recipe` is resolved here: its settings fill the fields left at the paper's
    values (`config.recipes`), so `RunConfig(train=TrainConfig(recipe="improved"))`
    trains what `pix2pix train --recipe improved` does."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def __post_init__(self) -> None:
        from pix2pix.nets import DISCRIMINATOR_LAYERS, coarsest_side, min_input_size

        parts = {name: getattr(self, name) for name in SECTIONS}
        for name, part in fill_recipe(parts, self.train.recipe).items():
            object.__setattr__(self, name, part)
        if self.model.nz is None:  # no code, unless the method's defaults gave one
            object.__setattr__(self, "model", dataclasses.replace(self.model, nz=0))
        object.__setattr__(self, "model", resolve_labels(self.model, self.data))
        # otherwise the image sizes are known only at load time (oasis: any multiple of 32)
        if self.data.crops and self.model.discriminator in DISCRIMINATOR_LAYERS:
            side = coarsest_side(self.data.crop_size, self.model.d_scales)
            need = min_input_size(DISCRIMINATOR_LAYERS[self.model.discriminator])
            if side < need:
                raise ConfigError(
                    f"{ref('d_scales')} {self.model.d_scales} with {ref('crop_size')} "
                    f"{self.data.crop_size}: the coarsest discriminator sees {side}x{side}, "
                    f"below the {need}x{need} {self.model.discriminator} needs; use fewer "
                    "scales, a larger crop or a smaller patch"
                )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from `to_dict()` output (missing fields take their defaults); unknown
        keys, values of the wrong type and other shapes are a ConfigError naming `source`.
        The settings `raw` gives are explicit: they win over its recipe's (`with_recipe`)."""
        names = ", ".join(SECTIONS)
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{source}: a config is a JSON object with the sections {names}, "
                f"not {type(raw).__name__}"
            )
        unknown = sorted(set(raw) - set(SECTIONS))
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {', '.join(map(str, unknown))}; "
                f"the sections are {names}"
            )
        for section, section_cls in SECTIONS.items():
            values = raw.get(section, {})
            if not isinstance(values, dict):
                raise ConfigError(
                    f"{source}: section {section} must be a JSON object of settings, "
                    f"not {type(values).__name__}"
                )
            known = {f.name for f in fields(section_cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ConfigError(
                    f"{source}: unknown {section} setting(s) {', '.join(unknown)}; "
                    "it was written by a newer pix2pix or edited by hand"
                )
        raw, _ = explicit_recipe(raw)
        parts = {}
        for section, section_cls in SECTIONS.items():
            try:
                parts[section] = section_cls(**raw.get(section, {}))
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc.raw}") from None
        return cls(**parts)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "config") -> RunConfig:
        return cls.from_dict(json.loads(text), source)

    def replace(self, **sections: dict[str, Any]) -> RunConfig:
        """Copy with some fields changed: `cfg.replace(train={"seed": 1})`. A new method
        or a recipe that names one takes its method's code size unless one is
        given (`nz` is the method's default)."""
        model = sections.get("model", {})
        recipe = RECIPES.get(sections.get("train", {}).get("recipe", ""), {})
        new_method = "method" in model or "method" in recipe.get("model", {})
        if new_method and "nz" not in model:
            sections = {**sections, "model": {**model, "nz": None}}
        parts = {
            name: dataclasses.replace(getattr(self, name), **sections.get(name, {}))
            for name in SECTIONS
        }
        return RunConfig(**parts)

    def differences(
        self, other: RunConfig, *, ignore_runtime: bool = True, runtime_only: bool = False
    ) -> list[str]:
        """Fields (as CLI flags) whose values differ, skipping runtime ones if asked
        (or, with `runtime_only`, only those)."""
        diffs = []
        for section, section_cls in SECTIONS.items():
            for f in fields(section_cls):
                runtime = bool(f.metadata.get("runtime"))
                if (ignore_runtime and runtime and not runtime_only) or (
                    runtime_only and not runtime
                ):
                    continue
                mine = getattr(getattr(self, section), f.name)
                theirs = getattr(getattr(other, section), f.name)
                if mine != theirs:
                    diffs.append(f"{ref(f.name)} {theirs!r} (checkpoint: {mine!r})")
        return diffs


def with_recipe(
    settings: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]]
) -> RunConfig:
    """The config a new run trains with: a config file's `settings`, then `overrides`
    (flags), over the recipe they name (in the fields they leave at the paper's values),
    over the paper's defaults. A setting that turns a recipe option back to the paper's
    value wins too: the run is then recorded as the paper recipe with the recipe's other
    options written out (and a warning says so)."""
    given = {s: {**settings.get(s, {}), **overrides.get(s, {})} for s in SECTIONS}
    raw, undone = explicit_recipe(given)
    if undone:
        recipe = given["train"]["recipe"]
        log.warning(
            "%s turns off part of --recipe %s (%s): the run is recorded as --recipe paper "
            "plus the options of it that it keeps",
            " ".join(undone),
            recipe,
            recipe_flags(recipe),
        )
    return RunConfig().replace(**raw)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a JSON config file gives, {section: {field: value}}, checked by
    building a RunConfig from them (a checkpoint's config.json works too)."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not a readable JSON config ({reason})") from None
    if isinstance(raw, dict) and "config" in raw and not set(raw) & set(SECTIONS):
        raw = raw["config"]  # checkpoints nest the config beside their progress
    RunConfig.from_dict(raw, source=str(path))
    return raw


def load_config_file(path: Path) -> RunConfig:
    """Read a RunConfig from a JSON file; fields it does not give take their defaults."""
    return RunConfig.from_dict(read_config_file(path), source=str(path))
