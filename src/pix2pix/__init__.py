"""pix2pix: paired image-to-image translation (Isola et al., CVPR 2017).

Train with `fit(RunConfig(...), run_dir)`, translate with `load(path).translate(image)`.
"""

from pix2pix._version import __version__
from pix2pix.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2pix.errors import ConfigError, UserError
from pix2pix.training.loop import fit
from pix2pix.translate import Pix2Pix, load

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "Pix2Pix",
    "RunConfig",
    "TrainConfig",
    "UserError",
    "__version__",
    "fit",
    "load",
]
