"""`pix2pix import official` (checkpoints of the official code) and `pix2pix push` (the Hub)."""

from __future__ import annotations

import argparse
import logging
from typing import get_args

from pix2pix.cli.flags import Subparsers
from pix2pix.config import ColorSpace, Direction, Norm

log = logging.getLogger("pix2pix")


def add_import(sub: Subparsers) -> None:
    p = sub.add_parser(
        "import",
        help="import a model trained elsewhere (official pytorch-CycleGAN-and-pix2pix .pth)",
        description="Convert a checkpoint of another implementation into a pix2pix "
        "checkpoint folder that every command accepts.",
    )
    kinds = p.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    o = kinds.add_parser(
        "official",
        help="a state dict of the official code (latest_net_G.pth, a published model)",
        description="Import an official pytorch-CycleGAN-and-pix2pix generator (pix2pix "
        "U-Net or ResNet; CycleGAN generators too, one direction) and optionally its "
        "discriminator. The architecture is inferred from the tensors and printed; the "
        "flags below override it. Loaded with torch.load(weights_only=True) only.",
    )
    _add_file_flags(o)
    o.add_argument("--discriminator", metavar="D.pth", help="its discriminator (for fine-tuning)")
    o.add_argument(
        "--generator-name",
        dest="generator_name",
        metavar="NAME",
        help="override the inferred architecture (e.g. unet_256)",
    )
    o.add_argument("--norm", choices=get_args(Norm), help="override the norm")
    o.add_argument("--in-channels", type=int, help="override the input channels")
    o.add_argument("--out-channels", type=int, help="override the output channels")
    o.add_argument(
        "--no-dropout",
        action="store_true",
        help="the model was trained without dropout (not visible in a U-Net's state dict; "
        "default: on, the official pix2pix default)",
    )
    o.add_argument(
        "--color-space",
        dest="color_space",
        choices=get_args(ColorSpace),
        help="what the channels are (default: inferred, lab for a 1 -> 2 channel generator: "
        "the official colorization model, L* in and a*b* out; rgb otherwise)",
    )
    o.set_defaults(func=_import_official)
    _add_import_bicyclegan(kinds)


def _add_import_bicyclegan(kinds: Subparsers) -> None:
    b = kinds.add_parser(
        "bicyclegan",
        help="a generator (and encoder) of the official BicycleGAN code",
        description="Import an official junyanz/BicycleGAN generator (G_Unet_add_input or "
        "G_Unet_add_all, upsample basic) and optionally its encoder (E_ResNet); the "
        "architecture is inferred from the tensors and printed. Read with "
        "torch.load(weights_only=True) only. The checkpoint trains on with --method "
        "bicyclegan (--init-from) and translates with a code (--samples).",
    )
    _add_file_flags(b)
    b.add_argument("--encoder", metavar="E.pth", help="its encoder's state dict (net_E)")
    b.add_argument(
        "--nz",
        type=int,
        help="code size, for a generator that adds z at the input imported without its "
        "encoder (default: inferred, else 8, the official default)",
    )
    b.add_argument(
        "--norm",
        default="instance",
        choices=get_args(Norm),
        help="the norm it was trained with (default: instance, the official)",
    )
    b.set_defaults(func=_import_bicyclegan)


def _add_file_flags(p: argparse.ArgumentParser) -> None:
    """What every import takes: the generator file, --out, --direction, --overwrite."""
    p.add_argument("generator", metavar="G.pth", help="the generator's state dict")
    p.add_argument("--out", required=True, metavar="DIR", help="the checkpoint folder to write")
    p.add_argument(
        "--direction",
        default="AtoB",
        choices=get_args(Direction),
        help="which side of a dataset the model reads, as trained (official facades: BtoA)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint in --out")


def _import_bicyclegan(args: argparse.Namespace) -> None:
    from pix2pix.interop.bicyclegan import import_bicyclegan

    out, fields = import_bicyclegan(
        args.generator,
        args.out,
        encoder=args.encoder,
        direction=args.direction,
        nz=args.nz,
        norm=args.norm,
        overwrite=args.overwrite,
    )
    for name, value in fields.items():
        print(f"  {name:<14} {value}")
    print(f"wrote {out}: translate with  pix2pix translate --checkpoint {out} IMAGES --out DIR")


def _import_official(args: argparse.Namespace) -> None:
    from pix2pix.interop import import_official

    overrides = {
        k: v
        for k, v in {
            "generator": args.generator_name,
            "norm": args.norm,
            "in_channels": args.in_channels,
            "out_channels": args.out_channels,
            "dropout": 0.0 if args.no_dropout else None,
        }.items()
        if v is not None
    }
    out, fields = import_official(
        args.generator,
        args.out,
        discriminator=args.discriminator,
        direction=args.direction,
        overrides=overrides,
        color_space=args.color_space,
        overwrite=args.overwrite,
    )
    given = {*overrides, *(["color_space"] if args.color_space else [])}
    for name, value in fields.items():
        print(f"  {name:<14} {value}{_note(name, value, fields, given)}")
    print(f"wrote {out}: translate with  pix2pix translate --checkpoint {out} IMAGES --out DIR")


def _note(name: str, value: object, fields: dict, given: set[str]) -> str:
    """What the printed value of an imported field rests on."""
    if name in given:
        return " (given)"
    if name == "color_space" and value == "lab":
        return " (inferred: 1 -> 2 channels, the official colorization model; else rgb)"
    unet = str(fields["generator"]).startswith(("unet_", "encdec_"))
    if name == "dropout" and value and unet:
        return " (assumed: not visible in the file; --no-dropout if trained without)"
    return ""


def add_push(sub: Subparsers) -> None:
    from pix2pix.hub import SENT

    p = sub.add_parser(
        "push",
        help="upload a checkpoint to the Hugging Face Hub (load it with hf:OWNER/NAME)",
        description="Upload a checkpoint folder to a Hub model repository, created if "
        f"needed. What is sent: {SENT}. The token is the Hub's own (HF_TOKEN or "
        "huggingface-cli login). Needs pip install 'pix2pix[hub]'.",
    )
    p.add_argument("checkpoint", metavar="DIR", help="run folder or checkpoint folder")
    p.add_argument("repo", metavar="OWNER/NAME", help="the Hub model repository")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.set_defaults(func=_push)


def _push(args: argparse.Namespace) -> None:
    from pix2pix.interop.push import push

    url = push(args.checkpoint, args.repo, private=args.private)
    print(f"pushed {args.checkpoint} to {url}; load it with  pix2pix.load('hf:{args.repo}')")
