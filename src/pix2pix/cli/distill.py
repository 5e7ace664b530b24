"""`pix2pix distill`: a small fast student generator trained from a teacher."""

from __future__ import annotations

import argparse
from pathlib import Path

from pix2pix.cli.flags import Subparsers, uses


def add_distill(sub: Subparsers) -> None:
    p = sub.add_parser(
        "distill",
        help="train a small fast student generator from a trained model (no targets needed)",
        description="Train a student generator to translate as a teacher does: the "
        "teacher's output for each input is the target of the pix2pix objective (GAN + "
        "L1), plus a feature term on the U-Nets' encoders. Inputs alone suffice "
        "(--inputs). The student is an ordinary checkpoint: translate, evaluate, serve and "
        "export it. With --resume, only --out is needed.",
    )
    uses(p, networks=True, images=True)
    p.add_argument("--teacher", metavar="RUN", help="the teacher's run or checkpoint folder")
    p.add_argument("--out", required=True, metavar="STUDENT", help="the student's run folder")
    p.add_argument("--resume", action="store_true", help="continue the student in --out")
    width = p.add_mutually_exclusive_group()
    width.add_argument("--ngf", type=int, help="the student's base width (filters)")
    width.add_argument(
        "--size",
        choices=["small", "tiny"],
        default="tiny",
        help="small: the teacher's width / 2 (a quarter of its parameters); tiny: / 4 (a "
        "sixteenth) (default: tiny)",
    )
    data = p.add_mutually_exclusive_group()
    data.add_argument("--inputs", metavar="DIR", help="train on these input images alone")
    data.add_argument("--data", metavar="DIR", help="pairs to take the inputs from")
    p.add_argument("--epochs", type=int, help="epochs at the initial rate (teacher's)")
    p.add_argument("--decay-epochs", type=int, help="epochs of linear decay (teacher's)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps")
    p.add_argument("--distill-features", type=float, help="weight of the feature term (1)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps (default: the teacher's)")
    p.add_argument("--precision", help="auto, fp32, bf16, fp16")
    p.set_defaults(func=_distill)


def _distill(args: argparse.Namespace) -> None:
    from pix2pix.checkpoint import TRAINING_FILES, find_checkpoint, open_checkpoint
    from pix2pix.errors import UserError, setting
    from pix2pix.methods.distill import student_config
    from pix2pix.training.loop import fit

    given = {
        "epochs": args.epochs,
        "decay_epochs": args.decay_epochs,
        "max_steps": args.max_steps,
        "distill_features": args.distill_features,
        "device": args.device,
        "precision": args.precision,
    }
    train = {k: v for k, v in given.items() if v is not None}
    out = Path(args.out)
    if args.resume:
        config = open_checkpoint(find_checkpoint(out), TRAINING_FILES).config.replace(train=train)
    elif not args.teacher:
        raise UserError(f"{setting('--teacher')} is required (or --resume an earlier student)")
    else:
        config = student_config(args.teacher, ngf=args.ngf, size=args.size, inputs=args.inputs,
                                data=args.data, train=train)  # fmt: skip
    final = fit(config, out, resume=args.resume)
    print(f"checkpoint: {final}")
