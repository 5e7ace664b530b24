"""`pix2pix train` and `pix2pix demo`: training, resuming, the built-in demo."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from pix2pix.cli.flags import Subparsers, add_config_flags, config_overrides, uses
from pix2pix.config import read_config_file
from pix2pix.config.recipes import describe_recipes
from pix2pix.config.run import with_recipe
from pix2pix.errors import render

log = logging.getLogger("pix2pix")


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


def add_train(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on paired images (or resume a run)",
        description="Train pix2pix. Defaults are the paper's. With --resume, only --out is\n"
        "needed: the run continues exactly where it stopped.",
        epilog=describe_recipes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    uses(p, networks=True, images=True)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, logs)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--config",
        metavar="JSON",
        help="start from a config file (flags override it); with --resume it may change "
        "only the runtime settings (paths, speed, how often to save and validate)",
    )
    add_config_flags(p)
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> None:
    from pix2pix.checkpoint import TRAINING_FILES, find_checkpoint, open_checkpoint
    from pix2pix.training.distributed import is_main_process
    from pix2pix.training.loop import fit

    out = Path(args.out)
    checkpoint = None
    if args.resume:
        # the run's own config, with what --config and the flags change; fit refuses
        # changes to anything but the runtime fields (where and how often)
        checkpoint = open_checkpoint(find_checkpoint(out), TRAINING_FILES)  # read once
        saved = checkpoint.config
        base = saved.replace(**read_config_file(Path(args.config))) if args.config else saved
        config = base.replace(**config_overrides(args))
        changed = saved.differences(config, runtime_only=True)
        if changed and not saved.differences(config):
            changes = render("; ".join(changed), flags=True)
            log.info("resuming with changed runtime settings: %s", changes)
    else:
        settings = read_config_file(Path(args.config)) if args.config else {}
        overrides = config_overrides(args)
        config = with_recipe(settings, overrides)
        if config.train.init_from:  # the architecture comes from the checkpoint
            from pix2pix.training.finetune import with_architecture

            given = {**settings.get("model", {}), **overrides.get("model", {})}
            config = with_architecture(config, given)
    stop = StopFlag()
    stop.install()
    final = fit(config, out, resume=args.resume, should_stop=stop, checkpoint=checkpoint)
    if is_main_process():  # under torchrun, rank 0 wrote it
        print(f"checkpoint: {final}")


def add_demo(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo",
        help="train and show a small model on built-in synthetic data",
        description="Generate labels -> rendering pairs, train a small U-Net, translate "
        "held-out scenes and write an HTML page. Re-running resumes or reuses the run.",
    )
    uses(p, networks=True)
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
    run = Path(args.out) / "run"
    print(f"checkpoint: {run / 'latest'}")
    print(f"open {page}")
    print("next:")
    print(f"  pix2pix translate --checkpoint {run} YOUR_LABEL_MAPS/ --out photos/")
    print(f"  pix2pix serve --checkpoint {run}          # draw label maps in the browser")
    print("  pix2pix train --data YOUR_DATA --recipe improved --out runs/mine   # your pairs")
