"""The `pix2pix` command: the only place that reads argv, sets process-wide state, exits.

Each subcommand is a thin adapter over a library function. Errors a user can fix print
one line (`pix2pix: error: ...`) and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pix2pix._version import __version__
from pix2pix.cli.data import add_data_tools
from pix2pix.cli.evaluate import add_evaluate, add_segmenter
from pix2pix.cli.models import add_export, add_serve, add_translate
from pix2pix.config import (
    SECTIONS,
    RunConfig,
    field_docs,
    flag_name,
    load_config_file,
    read_config_file,
)
from pix2pix.errors import UserError

log = logging.getLogger("pix2pix")

SECTION_TITLES = {
    "data": "data",
    "model": "networks",
    "train": "training",
    "monitor": "validation and logging",
}


class StopFlag:
    """Set by SIGINT/SIGTERM: training saves a checkpoint and exits between steps.

    A second Ctrl-C stops at once (the last checkpoint on disk stays intact).
    """

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this step (Ctrl-C again to stop now)")

    def __call__(self) -> bool:
        return self.requested


# ---------------------------------------------------------------- config flags


def _add_config_flags(
    parser: argparse.ArgumentParser, sections: dict[str, type] = SECTIONS
) -> None:
    """One flag per config field, help from the field's docstring; unset flags are absent."""
    for section, cls in sections.items():
        group = parser.add_argument_group(f"{SECTION_TITLES.get(section, section)} options")
        docs = field_docs(cls)
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp = hints[f.name]
            default = f.default if f.default is not MISSING else None
            kwargs: dict[str, Any] = {
                "dest": f"{section}.{f.name}",
                "default": argparse.SUPPRESS,
                "help": f"{docs.get(f.name, '')} (default: {default})",
            }
            if get_origin(tp) in (typing.Union, types.UnionType):
                tp = next(a for a in get_args(tp) if a is not type(None))  # X | None -> X
            if tp is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif get_origin(tp) is Literal:
                kwargs["choices"] = get_args(tp)
            else:
                kwargs["type"] = tp
                kwargs["metavar"] = f.name.split("_")[-1].upper()
            group.add_argument(flag_name(f.name, f), **kwargs)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """{'model': {...}, 'data': {...}, ...} of the config flags given."""
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            sections.setdefault(section, {})[name] = value
    return sections


# ---------------------------------------------------------------- subcommands
# Each subcommand is an `add_<name>(subparsers)` that registers its parser and handler.

Subparsers = argparse._SubParsersAction  # what add_subparsers() returns


def add_train(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on paired images (or resume a run)",
        description="Train pix2pix. Defaults are the paper's. With --resume, only --out is "
        "needed: the run continues exactly where it stopped.",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, logs)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--config",
        metavar="JSON",
        help="start from a config file (flags override it); with --resume it may change "
        "only the runtime settings (paths, speed, how often to save and validate)",
    )
    _add_config_flags(p)
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> None:
    from pix2pix.checkpoint import find_checkpoint, read_meta
    from pix2pix.training.loop import fit

    out = Path(args.out)
    if args.resume:
        # the run's own config, with what --config and the flags change; fit refuses
        # changes to anything but the runtime fields (where and how often)
        saved, _ = read_meta(find_checkpoint(out))
        base = saved.replace(**read_config_file(Path(args.config))) if args.config else saved
        config = base.replace(**_overrides(args))
        changed = saved.differences(config, runtime_only=True)
        if changed and not saved.differences(config):
            log.info("resuming with changed runtime settings: %s", "; ".join(changed))
    else:
        base = load_config_file(Path(args.config)) if args.config else RunConfig()
        config = base.replace(**_overrides(args))
    stop = StopFlag()
    stop.install()
    final = fit(config, out, resume=args.resume, should_stop=stop)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 wrote it
        print(f"checkpoint: {final}")


def add_demo(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo",
        help="train and show a small model on built-in synthetic data",
        description="Generate labels -> rendering pairs, train a small U-Net, translate "
        "held-out scenes and write an HTML page. Re-running resumes or reuses the run.",
    )
    p.add_argument("--out", default="runs/demo", help="demo folder (default: runs/demo)")
    p.add_argument("--size", type=int, default=64, help="image size (default: 64)")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default: 3000)")
    p.add_argument("--train-images", type=int, default=200, help="training pairs (default: 200)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> None:
    from pix2pix.demo import run_demo

    stop = StopFlag()
    stop.install()
    page = run_demo(
        args.out,
        size=args.size,
        steps=args.steps,
        train_images=args.train_images,
        device=args.device,
        should_stop=stop,
    )
    print(f"open {page}")


def add_data(sub: Subparsers) -> None:
    p = sub.add_parser("data", help="dataset tools", description="Dataset tools.")
    tools = p.add_subparsers(dest="data_command", metavar="TOOL", required=True)
    add_data_download(tools)
    add_data_tools(tools)


def add_data_download(tools: Subparsers) -> None:
    from pix2pix.data.download import DATASETS

    d = tools.add_parser(
        "download",
        help="download a public pix2pix dataset",
        description=f"Download one of: {', '.join(DATASETS)}.",
    )
    d.add_argument("name", metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    d.add_argument("--out", default="datasets", help="parent folder (default: datasets)")
    d.add_argument("--url", help="download from this URL instead of the published one")
    d.add_argument("--archive", help="extract this already downloaded .tar.gz instead")
    d.add_argument("--sha256", metavar="HEX", help="refuse an archive with another SHA-256")
    d.set_defaults(func=_data_download)


def _data_download(args: argparse.Namespace) -> None:
    from pix2pix.data.download import download_dataset

    target = download_dataset(
        args.name, args.out, url=args.url, archive=args.archive, sha256=args.sha256
    )
    print(f"dataset ready: {target}")


# ---------------------------------------------------------------- parser

COMMANDS: list[Callable[[Subparsers], None]] = [
    add_train,
    add_translate,
    add_export,
    add_serve,
    add_demo,
    add_data,
    add_evaluate,
    add_segmenter,
]


# commands that run networks, and so get the process-wide backend settings
NETWORK_COMMANDS = {"train", "translate", "export", "serve", "demo", "evaluate", "segmenter"}


# commands that read local image files, and so take --max-image-pixels
IMAGE_COMMANDS = {"train", "translate", "evaluate", "segmenter", "data"}


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of every (sub-)subcommand below `parser`."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    return [leaf for a in subs for p in a.choices.values() for leaf in _leaf_parsers(p)]


def _add_pixel_limit(sub: Subparsers) -> None:
    from pix2pix.data.images import DEFAULT_MAX_PIXELS

    for name in IMAGE_COMMANDS:
        for leaf in _leaf_parsers(sub.choices[name]):
            if leaf.prog.endswith(" download"):
                continue
            leaf.add_argument(
                "--max-image-pixels",
                type=int,
                default=DEFAULT_MAX_PIXELS,
                metavar="N",
                help="refuse local images with more pixels than this, before decoding them "
                f"(a decompression-bomb guard; default: {DEFAULT_MAX_PIXELS:,}, about "
                "9459x9459; 0: no limit)",
            )


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `pix2pix train: error: ...; see --help`, exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"pix2pix: error: {self.prog}: {message}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pix2pix",
        description="Paired image-to-image translation (Isola et al., CVPR 2017).",
    )
    parser.add_argument("--version", action="version", version=f"pix2pix {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print warnings")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    _add_pixel_limit(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    other_rank = os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 reports
    logging.basicConfig(
        level=logging.WARNING if args.quiet or other_rank else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    func: Callable[[argparse.Namespace], None] = args.func
    if args.command in NETWORK_COMMANDS:
        from pix2pix.runtime import configure_backends

        configure_backends()
    try:
        if hasattr(args, "max_image_pixels"):
            from pix2pix.data.images import set_max_image_pixels

            set_max_image_pixels(args.max_image_pixels)  # also for workers and ranks
        func(args)
    except UserError as exc:
        print(f"pix2pix: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("pix2pix: interrupted", file=sys.stderr)
        sys.exit(130)
