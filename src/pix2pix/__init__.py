"""pix2pix: paired image-to-image translation (Isola et al., CVPR 2017).

Train with `fit(RunConfig(...), run_dir)`, translate with `load(path).translate(image)`
or `translate_files(load(path), ["in/"], "out/")`, score with `evaluate(checkpoint,
data)`. The layers and where each part lives: docs/ARCHITECTURE.md.
"""

import sys as _sys
import types as _types

from pix2pix._version import __version__
from pix2pix.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2pix.errors import ConfigError, UserError
from pix2pix.evaluation import evaluate as _evaluate
from pix2pix.evaluation import fid as _fid
from pix2pix.evaluation import metrics as _metrics
from pix2pix.training.loop import fit
from pix2pix.translate import Pix2Pix, load, translate_files


class _CallableModule(_types.ModuleType):
    """`pix2pix.evaluate(...)` calls the function; `pix2pix.evaluate.evaluate` (0.1's
    module path) still works."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.evaluate(*args, **kwargs)


_evaluate.__class__ = _CallableModule

# The module paths of 0.1 (`pix2pix.evaluate.evaluate`, `pix2pix.metrics`, `pix2pix.fid`)
# keep working: they are the evaluation package's modules under their old names.
for _old, _module in (("evaluate", _evaluate), ("metrics", _metrics), ("fid", _fid)):
    _sys.modules[f"{__name__}.{_old}"] = _module
    globals()[_old] = _module

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "Pix2Pix",
    "RunConfig",
    "TrainConfig",
    "UserError",
    "__version__",
    "evaluate",
    "fit",
    "load",
    "translate_files",
]
