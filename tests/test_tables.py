"""Every choice the config offers is a key of the table that implements it, and back.

A `Literal` in `pix2pix.config` is what `--help`, the CLI's choices and the JSON checks
accept; the table is what the code runs. A name in one and not the other would be a
setting that crashes, or a feature nobody can select.
"""

from __future__ import annotations

from typing import get_args

import pytest

from pix2pix.config import (
    PREPROCESS_STEPS,
    CompileChoice,
    GanLoss,
    Norm,
    OutputDepth,
    Precision,
    Preprocess,
    ValMetric,
)
from pix2pix.data.images import DEPTHS
from pix2pix.evaluation.metrics import HIGHER_IS_BETTER, METRICS
from pix2pix.losses import GAN_LOSSES
from pix2pix.nets.layers import NORMS
from pix2pix.runtime import COMPILE_MODES, DTYPES

PAIRS = {
    "gan_loss": (GanLoss, set(GAN_LOSSES)),
    "val_metric": (ValMetric, set(METRICS) | {"fid"}),  # fid: a dataset-level score
    "val_metric direction": (ValMetric, set(HIGHER_IS_BETTER) - {"kid"}),  # kid: reported only
    "norm": (Norm, set(NORMS)),
    "precision": (Precision, set(DTYPES) | {"auto"}),
    "compile": (CompileChoice, set(COMPILE_MODES) | {"auto", "on", "off"}),
    "preprocess": (Preprocess, set(PREPROCESS_STEPS)),
    "output_depth": (OutputDepth, set(DEPTHS) | {"auto"}),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_each_choice_has_an_implementation_and_back(name: str) -> None:
    literal, table = PAIRS[name]
    assert set(get_args(literal)) == table, name


def test_a_missing_implementation_is_caught() -> None:
    literal, table = PAIRS["gan_loss"]
    assert set(get_args(literal)) != table - {"lsgan"}  # the check above can fail
