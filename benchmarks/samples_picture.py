"""A picture of diverse outputs: rows of input | K samples | target for test pairs.

    python -m benchmarks.samples_picture --checkpoint RUN --data DIR --out picture.png
        [--samples 6 --rows 3 --z-seed 0 --first 0]

Every row takes the same K codes (`Pix2Pix.sample_z(K, z_seed)`, as `translate --samples`
draws them); a model without a code gives its K dropout draws (paper mode, seeds 0..K-1).
Pairs are read and resized as `evaluate` reads them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pix2pix.data.files.encoding import output_array
from pix2pix.data.files.images import from_tensor, save_image
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.evaluation.pairs import load_eval_pair, model_input, target_tensor
from pix2pix.html import image_grid
from pix2pix.translate import Pix2Pix


def sample_rows(model: Pix2Pix, data: Path, samples: int, rows: int, z_seed: int, first: int):
    pairs = find_pairs(data, "auto")[first : first + rows]
    coded = any(s.name == "z" for s in model.extra_inputs)
    z = model.sample_z(samples, z_seed) if coded else None
    grid = []
    for pair in pairs:
        p = load_eval_pair(pair, model.config)
        x = model_input(p, model.config)
        outs = []
        for k in range(samples):
            if z is not None:
                y = model.translate_tensor(x, extra={"z": z[k : k + 1]})
            else:
                y = model.translate_tensor(x, seed=k)  # paper mode: dropout draw k
            outs.append(output_array(y[0], x[0], model.config.data))
        target = from_tensor(target_tensor(p)[0], "uint8")
        grid.append([np.asarray(p.input), *outs, target])
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="the test folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--z-seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="first test pair of the rows")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Pix2Pix.load(args.checkpoint, device="cpu", precision="fp32", compile="off")
    rows = sample_rows(model, Path(args.data), args.samples, args.rows, args.z_seed, args.first)
    save_image(image_grid(rows), Path(args.out))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
