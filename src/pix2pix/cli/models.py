"""`pix2pix translate`, `export` and `serve`: the subcommands that run a trained model.

Thin adapters over `pix2pix.translate`, `pix2pix.export` and `pix2pix.serve`; registered
by `pix2pix.cli`, which reads argv and turns `UserError`s into one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
from typing import get_args

from pix2pix.cli.flags import add_progress_flag, uses
from pix2pix.config import CompileChoice, Precision, Switch, Weights
from pix2pix.errors import UserError
from pix2pix.translate.tiling import TileStats

log = logging.getLogger("pix2pix")

Subparsers = argparse._SubParsersAction  # what add_subparsers() returns


def add_translate(sub: Subparsers) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with a trained model",
        description="Translate images of any size. Default inference is the paper's: dropout "
        "on and batch norm with the test batch's statistics; --eval uses the running "
        "statistics and no dropout (deterministic).",
    )
    uses(p, networks=True, images=True)
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for <stem>.png outputs")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing files in --out (never an input: that is always refused)",
    )
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass (default: 1)")
    p.add_argument("--eval", action="store_true", help="eval-mode inference (deterministic)")
    p.add_argument(
        "--aligned", action="store_true", help="inputs are A|B files: translate the input half"
    )
    p.add_argument(
        "--paired",
        action="store_true",
        help="inputs are dataset folders with A/ and B/ (or stacked A1/, A2/, ...): "
        "translate the input side",
    )
    p.add_argument("--seed", type=int, default=0, help="dropout seed in paper mode (default: 0)")
    p.add_argument(
        "--samples",
        type=int,
        default=1,
        metavar="K",
        help="a model with a latent code (bicyclegan): K outputs per input, <stem>_00 ... "
        "(default: 1)",
    )
    p.add_argument("--z-seed", type=int, default=0, help="seed of the K codes (default: 0)")
    p.add_argument(
        "--style",
        metavar="IMAGE",
        help="a model with an encoder: translate with the code of this output-side image",
    )
    p.add_argument(
        "--tile",
        default="auto",
        metavar="N|auto|off",
        help="translate images larger than N x N in overlapping N x N tiles, blended "
        "(N a multiple of the generator's stride); auto (default): only images whose "
        "forward pass would not fit --max-memory, at the largest tile that does",
    )
    p.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        metavar="M",
        help="pixels tiles share, blended (default: an eighth of the tile; 0: hard seams)",
    )
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory one forward pass may take, e.g. 4G or 512M (default: half of the "
        "memory available at start)",
    )
    p.add_argument(
        "--tile-stats",
        choices=get_args(TileStats),
        default="tile",
        help="paper mode: normalise each tile with its own batch statistics (tile) or with "
        "the whole image's, pooled over the tiles in a first pass (image) (default: tile)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    add_speed_flags(p)
    add_backend_flags(p)
    add_weights_flag(p)
    add_progress_flag(p)
    p.set_defaults(func=_translate)


def add_weights_flag(p: argparse.ArgumentParser) -> None:
    """--weights: the EMA average or G's own weights."""
    p.add_argument(
        "--weights",
        default="auto",
        choices=get_args(Weights),
        help="which generator weights: auto (the moving average a run trained with "
        "--ema-decay saved, else G's own), ema, raw (G's own)",
    )


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """--backend, --quantize: what runs the generator on the CPU."""
    p.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "torch", "onnxruntime"),
        help="auto (torch), torch, or onnxruntime: the generator exported to ONNX (once per "
        "model, size and machine, kept with the compiled ones) and run by ONNX Runtime on "
        "the CPU in float32 (needs pix2pix[export])",
    )
    p.add_argument(
        "--quantize",
        default="off",
        choices=("off", "int8"),
        help="onnxruntime: int8 weights by dynamic quantisation (changes the outputs "
        "slightly; docs/PERFORMANCE.md)",
    )


def add_speed_flags(p: argparse.ArgumentParser) -> None:
    """--precision, --channels-last, --compile for inference commands."""
    p.add_argument(
        "--precision",
        default="auto",
        choices=get_args(Precision),
        help="inference precision: auto (bf16 where the hardware has it), fp32, bf16, fp16",
    )
    p.add_argument("--channels-last", default="auto", choices=get_args(Switch), help="NHWC layout")
    p.add_argument(
        "--compile",
        default="auto",
        choices=[*get_args(CompileChoice), "aot"],
        help="auto (CPU): the generator compiled ahead of time, from the cache "
        "(~/.cache/pix2pix or $PIX2PIX_CACHE) when it has one for this model and size, "
        "compiled into it (once, ~20 s) for an input size 200+ images of the job share "
        "(pix2pix cache list|clear); aot: compile every size now if missing; on: "
        "torch.compile in this process (optionally in a torch.compile mode); off: neither",
    )


def _translate(args: argparse.Namespace) -> None:
    from pix2pix.data.files.images import expand_inputs
    from pix2pix.translate import Pix2Pix, translate_files

    # --paired takes dataset folders, whose input files translate_files finds
    paths = args.inputs if args.paired else [str(p) for p in expand_inputs(args.inputs)]
    model = Pix2Pix.load(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        backend=args.backend,
        quantize=args.quantize,
        weights=args.weights,  # what to compile: the sizes 200+ images share (translate_files)
    )
    outputs = translate_files(
        model,
        paths,
        args.out,
        batch_size=args.batch_size,
        eval_mode=args.eval,
        aligned=args.aligned,
        paired=args.paired,
        seed=args.seed,
        overwrite=args.overwrite,
        tile=_tile(args.tile),
        overlap=args.tile_overlap,
        tile_stats=args.tile_stats,
        max_memory=_size(args.max_memory) if args.max_memory else None,
        samples=args.samples,
        z_seed=args.z_seed,
        style=args.style,
        progress=args.progress,
    )
    print(f"wrote {len(outputs)} image(s) to {args.out}")


def _tile(value: str) -> int | str | None:
    """--tile: a size, auto or off."""
    if value in ("auto", "off"):
        return None if value == "off" else value
    try:
        return int(value)
    except ValueError:
        raise UserError(
            f"--tile {value!r} is not valid; give a size in pixels, auto or off"
        ) from None


def _size(value: str) -> int:
    """--max-memory: bytes, or a number with K, M, G or T (binary units)."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    text = value.strip().upper().removesuffix("B")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise UserError(f"--max-memory {value!r} is not a size; use e.g. 4G or 512M") from None


def add_serve(sub: Subparsers) -> None:
    from pix2pix.serve.upload import Limits

    limits = Limits()
    p = sub.add_parser(
        "serve",
        help="a local web page: draw or upload an image, see its translation",
        description="Serve a demo page (draw on a canvas or upload an image; the translation "
        "appears beside it) and POST /translate (image in, PNG out; OpenAPI schema at "
        "/openapi.json). Needs the 'serve' extra: pip install 'pix2pix[serve]'. Binds "
        "127.0.0.1 (this machine only) unless --host says otherwise; there is no "
        "authentication.",
    )
    uses(p, networks=True)
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--palette",
        metavar="'R,G,B R,G,B ...'",
        help="label colours to draw with (the first is the background), or a preset "
        "(facades), JSON or JSON file as for train --palette; default: the palette the "
        "checkpoint records (train --palette), else a pen and an eraser",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=limits.max_bytes / 2**20,
        help=f"largest upload in MB (default: {limits.max_bytes / 2**20:g})",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=limits.max_pixels,
        help=f"largest image, width x height (default: {limits.max_pixels} = 2048x2048)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    add_speed_flags(p)
    add_weights_flag(p)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> None:
    try:
        from pix2pix.serve.app import create_app, servable
        from pix2pix.serve.server import LOOPBACK, serve
    except ImportError as exc:
        raise UserError(
            f"pix2pix serve needs {exc.name}; install it with pip install 'pix2pix[serve]'"
        ) from None
    from pix2pix.serve.drawing import palette_option
    from pix2pix.serve.upload import Limits
    from pix2pix.translate import Pix2Pix

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is out of range; use 1..65535")
    max_bytes = args.max_upload_mb * 2**20
    if not 1 <= max_bytes < 2**53:  # NaN and infinity fail too
        raise UserError(
            f"--max-upload-mb {args.max_upload_mb:g} is out of range; use a size of at least "
            "one byte (1e-6) in MB, e.g. 10"
        )
    if args.max_pixels < 1:
        raise UserError(f"--max-pixels {args.max_pixels} is out of range; use a value >= 1")
    palette = palette_option(args.palette) if args.palette else None
    limits = Limits(max_bytes=int(max_bytes), max_pixels=args.max_pixels)
    model = Pix2Pix.load(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        weights=args.weights,
    )
    problem = servable(model)
    if problem:
        raise UserError(f"{args.checkpoint}: {problem}; use translate or export instead")
    app = create_app(model, palette=palette, limits=limits)
    if args.host not in LOOPBACK:
        log.warning(
            "serving on %s: anyone who can reach this address can use the model "
            "(there is no authentication)",
            args.host,
        )
    print(f"pix2pix demo: http://{args.host}:{args.port}/  (Ctrl-C to stop)", flush=True)
    serve(app, host=args.host, port=args.port)
