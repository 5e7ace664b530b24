"""The `pix2pix` command: the only place that reads argv, sets process-wide state, exits.

Each subcommand is a thin adapter over a library function. Errors a user can fix print
one line (`pix2pix: error: ...`) and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from pix2pix._version import __version__
from pix2pix.cli.cache import add_cache
from pix2pix.cli.data import add_data
from pix2pix.cli.distill import add_distill
from pix2pix.cli.evaluate import add_evaluate, add_segmenter
from pix2pix.cli.export import add_export
from pix2pix.cli.flags import Parser, Subparsers, add_log_flags, add_pixel_limit
from pix2pix.cli.interop import add_import, add_push
from pix2pix.cli.models import add_serve, add_translate
from pix2pix.cli.train import add_demo, add_train
from pix2pix.errors import UserError
from pix2pix.training.distributed import is_main_process

log = logging.getLogger("pix2pix")

# ---------------------------------------------------------------- parser

COMMANDS: list[Callable[[Subparsers], None]] = [
    add_train,
    add_distill,
    add_translate,
    add_export,
    add_serve,
    add_demo,
    add_data,
    add_evaluate,
    add_segmenter,
    add_import,
    add_push,
    add_cache,
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pix2pix",
        description="Paired image-to-image translation (Isola et al., CVPR 2017).",
    )
    parser.add_argument("--version", action="version", version=f"pix2pix {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    add_pixel_limit(sub)
    add_log_flags(parser, top=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        other_rank = not is_main_process()  # under torchrun only rank 0 reports
    except UserError:
        other_rank = False  # a bad RANK: fit says so, in one line
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(
        level=logging.WARNING if args.quiet or other_rank else level,
        format="%(message)s",
        stream=sys.stderr,
    )
    func: Callable[[argparse.Namespace], None] = args.func
    if getattr(args, "runs_networks", False):  # declared where it is registered
        from pix2pix.runtime import configure_backends

        configure_backends()
    try:
        if hasattr(args, "max_image_pixels"):
            from pix2pix.data.files.limits import set_max_image_pixels

            set_max_image_pixels(args.max_image_pixels)  # also for workers and ranks
        func(args)
    except UserError as exc:
        print(f"pix2pix: error: {exc.for_cli()}", file=sys.stderr)  # settings as flags
        sys.exit(2)
    except KeyboardInterrupt:
        print("pix2pix: interrupted", file=sys.stderr)
        sys.exit(130)
