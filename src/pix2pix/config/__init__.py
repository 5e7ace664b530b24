"""Run configuration: frozen dataclasses, validated on construction, JSON round-trip.

A `RunConfig` is everything needed to rebuild the networks, reload the data and resume a
run; it is stored as `config.json` in every checkpoint. The docstring under each field is
its `--help` text, and a field's CLI flag is its name in kebab-case (`load_size` ->
`--load-size`). The paper's defaults (Isola et al. 2017, sec. 3.3 and 4) are the
defaults here.
"""

from pix2pix.config.choices import (
    AUGMENTATIONS,
    PREPROCESS_STEPS,
    Augmentation,
    CacheMode,
    ColorSpace,
    CompileChoice,
    Direction,
    GanLoss,
    Layout,
    Norm,
    OutputDepth,
    Precision,
    Preprocess,
    Recipe,
    Reconstruction,
    Switch,
    Upsample,
    ValMetric,
    Weights,
    WhereAdd,
)
from pix2pix.config.evaluation import EvalConfig, SizeRule
from pix2pix.config.fields import (
    FLAGS,
    RUNTIME,
    SEED_MAX,
    at_least,
    check_fields,
    check_seed,
    choice,
    field_docs,
    flag_name,
    ref,
)
from pix2pix.config.run import RunConfig, load_config_file, read_config_file
from pix2pix.config.sections import (
    SECTIONS,
    DataConfig,
    ModelConfig,
    MonitorConfig,
    TrainConfig,
)

__all__ = [
    "AUGMENTATIONS",
    "FLAGS",
    "PREPROCESS_STEPS",
    "RUNTIME",
    "SECTIONS",
    "SEED_MAX",
    "Augmentation",
    "CacheMode",
    "ColorSpace",
    "CompileChoice",
    "DataConfig",
    "Direction",
    "EvalConfig",
    "GanLoss",
    "Layout",
    "ModelConfig",
    "MonitorConfig",
    "Norm",
    "OutputDepth",
    "Precision",
    "Preprocess",
    "Recipe",
    "Reconstruction",
    "RunConfig",
    "SizeRule",
    "Switch",
    "TrainConfig",
    "Upsample",
    "ValMetric",
    "Weights",
    "WhereAdd",
    "at_least",
    "check_fields",
    "check_seed",
    "choice",
    "field_docs",
    "flag_name",
    "load_config_file",
    "read_config_file",
    "ref",
]
