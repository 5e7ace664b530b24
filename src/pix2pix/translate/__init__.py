"""Translation with a trained generator: any image size, the paper's or eval inference.

Two inference modes:

- ``paper`` (default): as in the paper (sec. 3.3), the generator runs as in training:
  dropout stays on and batch norm normalises with the statistics of the test batch.
  With batch size 1 that is instance normalisation. Outputs vary with the dropout seed
  (fixed by ``seed``) and, for batches > 1, with what else is in the batch.
- ``eval``: dropout off and batch norm with the running averages from training:
  deterministic, and independent of batching.

Images of any size are reflect-padded to a multiple of the generator's stride and the
output is cropped back, so an output always has its input's exact size. Inputs are read
at their own depth; outputs are written at the depth and in the colour space recorded in
the checkpoint (`data.output_depth`, `data.color_space`): `<stem>.png` for 1 or 3
channels of 8 or 16 bits, `<stem>.tif` (one page per channel) otherwise; a TIFF input
gives `<stem>.tif`, with its georeferencing tags (with the `tiff` extra). Tiled images
are streamed (`translate.stream`): read and written a band of tile rows at a time.
"""

from pix2pix.translate.files import read_input, translate_files
from pix2pix.translate.model import Pix2Pix, load

__all__ = ["Pix2Pix", "load", "read_input", "translate_files"]
