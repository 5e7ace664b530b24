"""`pix2pix export`: the generator as ONNX or TorchScript (verified against PyTorch), a
static web site that translates in the browser, or a Gradio app."""

from __future__ import annotations

import argparse
import json

from pix2pix.cli.flags import Subparsers, uses
from pix2pix.cli.models import add_weights_flag
from pix2pix.errors import UserError, setting


def add_export(sub: Subparsers) -> None:
    from pix2pix.export import DEFAULT_TOLERANCE, FORMATS

    p = sub.add_parser(
        "export",
        help="export the generator to ONNX or TorchScript, verified against PyTorch",
        description="Export the generator: input (B, C_in, H, W) float32 in [-1, 1], H and W "
        "multiples of the generator's stride (256 for unet_256, 4 for resnet_*), batch, "
        "height and width dynamic; output (B, C_out, H, W) in [-1, 1]. Dropout is off. "
        "Batch norm uses the statistics of the translated batch, as the paper's inference "
        "(default), or the running statistics from training (--eval). The written file is "
        "run (onnxruntime or torch.jit.load) on two random input sizes and compared with "
        "PyTorch in the same mode; if it differs by more than --tolerance, nothing is written.",
    )
    uses(p, networks=True)
    p.add_argument("--checkpoint", required=True, help="run folder or checkpoint folder")
    p.add_argument(
        "--format",
        required=True,
        choices=[*FORMATS, "web", "gradio"],
        help="onnx, torchscript; web: a static site (index.html, model.onnx, ONNX Runtime "
        "Web) that translates in the browser, offline; gradio: a Gradio app (a HF Space)",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="file (g.onnx); web: a folder")
    p.add_argument(
        "--runtime",
        metavar="DIR",
        help="--format web: the onnxruntime-web npm package, unpacked (its folder, dist/ or a "
        "folder with node_modules/onnxruntime-web); default: npm pack it now",
    )
    p.add_argument(
        "--web-weights",
        default=None,
        choices=("fp32", "fp16", "int8"),
        help="--format web: the kernels in model.onnx as fp16 (default: half the size, "
        "0.1 level from fp32 measured), int8 (a quarter; per-channel scales; about 2 levels "
        "at most) or fp32; computed in float32 either way",
    )
    p.add_argument(
        "--eval",
        action="store_true",
        help="batch norm with running statistics (default: the batch's own statistics, "
        "the paper's inference); dropout is off either way",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"largest accepted |exported - PyTorch| (default: {DEFAULT_TOLERANCE:g})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_weights_flag(p)
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> None:
    from pix2pix.export import export_checkpoint

    if args.format == "web":
        from pix2pix.serve.web import export_web

        site = export_web(args.checkpoint, args.out, runtime=args.runtime, eval_mode=args.eval,
                          overwrite=args.overwrite, weights=args.weights,
                          web_weights=args.web_weights or "fp16")  # fmt: skip
        mb = (site / "model.onnx").stat().st_size / 2**20
        w = json.loads((site / "model.json").read_text())["weights"]
        change = (
            f", {w['levels_max']:.2f} levels at most from fp32" if w["format"] != "fp32" else ""
        )
        return print(f"wrote {site}/ (model.onnx {mb:.1f} MB, {w['format']} weights{change}): "
                     f"python -m http.server -d {site}")  # fmt: skip
    if args.format == "gradio":
        from pix2pix.serve.space import export_gradio

        site = export_gradio(args.checkpoint, args.out, overwrite=args.overwrite,
                             weights=args.weights)  # fmt: skip
        return print(
            f"wrote {site}/: cd {site} && pip install -r requirements.txt && python app.py"
        )
    if args.runtime or args.web_weights:
        flag = "--runtime" if args.runtime else "--web-weights"
        raise UserError(f"{setting(flag)} is for --format web")

    result = export_checkpoint(
        args.checkpoint,
        args.format,
        args.out,
        eval_mode=args.eval,
        tolerance=args.tolerance,
        overwrite=args.overwrite,
        weights=args.weights,
    )
    for check in result.checks:
        shape = "x".join(map(str, check.shape))
        print(f"verified input {shape}: max |{args.format} - pytorch| = {check.max_abs_diff:.3g}")
    mode = "running statistics" if result.eval_mode else "batch statistics"
    print(
        f"wrote {result.path} (batch norm: {mode}; dropout off; "
        f"H, W multiples of {result.stride}; tolerance {result.tolerance:g})"
    )
