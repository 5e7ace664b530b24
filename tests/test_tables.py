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
    Augmentation,
    CompileChoice,
    GanLoss,
    Norm,
    OutputDepth,
    Precision,
    Preprocess,
    ValMetric,
)
from pix2pix.data.files.images import DEPTHS
from pix2pix.evaluation.metrics import HIGHER_IS_BETTER, METRICS
from pix2pix.losses import GAN_LOSSES
from pix2pix.methods.augment import AUGMENTS
from pix2pix.nets.layers import NORMS
from pix2pix.runtime import COMPILE_MODES, DTYPES

# each table is read when a test runs (not copied at import), so that the check sees
# the code as it is
PAIRS = {
    "gan_loss": (GanLoss, lambda: set(GAN_LOSSES)),
    "val_metric": (ValMetric, lambda: set(METRICS) | {"fid"}),  # fid: a dataset-level score
    "val_metric direction": (ValMetric, lambda: set(HIGHER_IS_BETTER) - {"kid"}),  # kid: reported
    "norm": (Norm, lambda: set(NORMS)),
    "precision": (Precision, lambda: set(DTYPES) | {"auto"}),
    "compile": (CompileChoice, lambda: set(COMPILE_MODES) | {"auto", "on", "off"}),
    "preprocess": (Preprocess, lambda: set(PREPROCESS_STEPS)),
    "output_depth": (OutputDepth, lambda: set(DEPTHS) | {"auto"}),
    "augment": (Augmentation, lambda: set(AUGMENTS)),
}


def unmatched(name: str) -> set[str]:
    """The names in only one of the Literal and its table: a choice nothing implements,
    or an implementation no setting can choose."""
    literal, table = PAIRS[name]
    return set(get_args(literal)) ^ table()


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_each_choice_has_an_implementation_and_back(name: str) -> None:
    assert not unmatched(name), name


def test_a_missing_implementation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not unmatched("gan_loss")
    monkeypatch.delitem(GAN_LOSSES, "lsgan")  # an implementation removed from its table
    assert unmatched("gan_loss") == {"lsgan"}
    monkeypatch.setitem(NORMS, "group", NORMS["batch"])  # one added without its choice
    assert unmatched("norm") == {"group"}
