"""Finding pairs on disk: aligned A|B files, or A/ and B/ folders (A1/, A2/, ... stacked
as channels), inside a dataset folder or its split subfolder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pix2pix.config import DataConfig
from pix2pix.data.files.images import list_images
from pix2pix.errors import UserError, setting


@dataclass(frozen=True)
class PairFiles:
    """Where one pair lives: `a` holds A|B side by side when `b` is None.

    `stack_a`/`stack_b`: further files of the side (from A2/, A3/, ...), stacked after
    `a`/`b` along the channels.
    """

    name: str
    a: Path
    b: Path | None = None
    stack_a: tuple[Path, ...] = ()
    stack_b: tuple[Path, ...] = ()

    @property
    def files_a(self) -> tuple[Path, ...]:
        return (self.a, *self.stack_a)

    @property
    def files_b(self) -> tuple[Path, ...]:
        return () if self.b is None else (self.b, *self.stack_b)


def resolve_root(cfg: DataConfig, split: str | None = None) -> Path:
    """The folder holding the pairs: `root/split` when it exists, else `root`."""
    if not cfg.root:
        raise UserError(f"no dataset given; pass {setting('--data')} DIR")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found; check {setting('--data')}")
    sub = root / (split or cfg.split)
    return sub if sub.is_dir() else root


def pairs_folder(path: str | Path, split: str, flag: str = "--data") -> Path:
    """`path/split` when it exists, else `path`; a missing folder is a UserError."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found; check {setting(flag)}")
    return root / split if (root / split).is_dir() else root


def side_folders(root: Path, side: str) -> list[Path]:
    """The folders of one side of a paired dataset: [root/A] or [root/A1, root/A2, ...]."""
    numbered = []
    n = 1
    while (root / f"{side}{n}").is_dir():
        numbered.append(root / f"{side}{n}")
        n += 1
    if numbered and (root / side).is_dir():
        raise UserError(
            f"{root}: holds both {side}/ and {side}1/; use {side}/ for one folder per side, "
            f"or {side}1/, {side}2/, ... for channels stacked from several"
        )
    return numbered or ([root / side] if (root / side).is_dir() else [])


def detect_layout(root: Path) -> str:
    """'paired' when `root` has A/ (or A1/, ...) and B/ (or B1/, ...) subfolders, else 'aligned'."""
    return "paired" if side_folders(root, "A") and side_folders(root, "B") else "aligned"


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in files:
            raise UserError(
                f"{path}: same name as {files[path.stem].name}; keep one file per name in {folder}"
            )
        files[path.stem] = path
    return files


def find_pairs(root: Path, layout: str = "auto") -> list[PairFiles]:
    """All pairs under `root`; a file without its partner is an error naming it."""
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "aligned":
        pairs = [PairFiles(p.stem, p) for p in list_images(root)]
    elif layout == "inputs":  # inputs alone (distillation): each file stands for both sides
        pairs = [PairFiles(p.stem, p, p) for p in list_images(root)]
    else:
        a_dirs, b_dirs = side_folders(root, "A"), side_folders(root, "B")
        for side, found in (("A", a_dirs), ("B", b_dirs)):
            if not found:
                raise UserError(f"{root / side}: folder not found; paired data needs A/ and B/")
        folders = [*a_dirs, *b_dirs]
        files = [_by_stem(folder) for folder in folders]
        for i, mine in enumerate(files):
            for j, other in enumerate(files):
                for stem, path in mine.items():
                    if i != j and stem not in other:
                        raise UserError(
                            f"{path}: no partner named {stem}.* in {folders[j]}; add or remove it"
                        )
        na = len(a_dirs)
        pairs = [
            PairFiles(
                stem,
                files[0][stem],
                files[na][stem],
                tuple(f[stem] for f in files[1:na]),
                tuple(f[stem] for f in files[na + 1 :]),
            )
            for stem in files[0]
        ]
    if not pairs:
        raise UserError(f"{root}: no images found; put A|B images (or A/ and B/ folders) there")
    return pairs
