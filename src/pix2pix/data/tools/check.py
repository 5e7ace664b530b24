"""`pix2pix data check`: what a dataset folder holds and everything wrong with it.

Looks at the folder and each of its subfolders that holds a dataset (aligned files, or
A/ + B/ folders, stacked A1/, A2/, ... included), decodes every image fully on all cores,
and reports counts, sizes, modes, depths and channel counts, then one line per defect:
unreadable or truncated files, files without their partner, partners of different
sizes, odd-width A|B files, duplicate names. It never stops at the first bad file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pix2pix.data.files.images import ImageInfo, image_info, is_image, list_images, read_image
from pix2pix.data.pairs.folders import side_folders
from pix2pix.data.tools.prepare import parallel_map
from pix2pix.errors import UserError


@dataclass
class CheckReport:
    """The findings: one summary line per dataset folder, counters, and the defects."""

    root: Path
    folders: list[str] = field(default_factory=list)
    sizes: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    depths: Counter[str] = field(default_factory=Counter)
    channels: Counter[int] = field(default_factory=Counter)
    defects: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.defects

    def lines(self) -> list[str]:
        """The report as text lines."""

        def counts(counter: Counter) -> str:
            return ", ".join(f"{k} ({n})" for k, n in counter.most_common()) or "-"

        lines = [*self.folders]
        lines += [
            f"sizes: {counts(self.sizes)}",
            f"modes: {counts(self.modes)}",
            f"depths: {counts(self.depths)}",
            f"channels: {counts(self.channels)}",
        ]
        if self.ok:
            return [*lines, "no defects found"]
        return [*lines, f"{len(self.defects)} defect(s):", *(f"  {d}" for d in self.defects)]


def _inspect(path: Path) -> ImageInfo | str:
    """The header of a fully decodable image, or the defect line."""
    try:
        info = image_info(path)
        read_image(path)  # decodes every pixel: truncated files fail here
        return info
    except UserError as exc:
        return str(exc)


def _sides(folder: Path, side: str, defects: list[str] | None = None) -> list[Path]:
    """`side_folders`, with a clash of A/ and A1/ recorded as a defect (A/ is used)."""
    try:
        return side_folders(folder, side)
    except UserError as exc:
        if defects is not None:
            defects.append(str(exc))
        return [folder / side]


def _dataset_folders(root: Path) -> list[Path]:
    """`root` and its subfolders (not A/, B/, A1/, ...) that hold images or A/ + B/."""
    sides = {p.name for s in "AB" for p in _sides(root, s)}
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in sides)
    return [f for f in (root, *subfolders) if _is_paired(f) or list_images(f)]


def _is_paired(folder: Path) -> bool:
    return any((folder / s).is_dir() for s in ("A", "B", "A1", "B1"))


class _Checker:
    def __init__(self, root: Path, workers: int | None) -> None:
        self.report = CheckReport(root)
        self.workers = workers

    def inspect(self, paths: list[Path]) -> dict[Path, ImageInfo]:
        """Decode `paths`, count what they hold, record the bad ones; the good ones' infos."""
        good = {}
        for path, result in zip(paths, parallel_map(_inspect, paths, self.workers)):
            if isinstance(result, str):
                self.report.defects.append(result)
                continue
            good[path] = result
            r = self.report
            r.sizes[f"{result.width}x{result.height}"] += 1
            r.modes[result.mode] += 1
            r.depths[result.depth] += 1
            r.channels[result.channels] += 1
        return good

    def aligned(self, folder: Path) -> None:
        files = list_images(folder)
        self.report.folders.append(f"{folder}: aligned A|B files, {len(files)} image(s)")
        for path, info in self.inspect(files).items():
            if info.width % 2:
                self.report.defects.append(
                    f"{path}: width {info.width} is odd, so it cannot hold A|B halves"
                )

    def paired(self, folder: Path) -> None:
        defects = self.report.defects
        a_dirs, b_dirs = _sides(folder, "A", defects), _sides(folder, "B", defects)
        for side, found in (("A", a_dirs), ("B", b_dirs)):
            if not found:
                defects.append(f"{folder / side}: folder missing beside the other side")
        dirs = [*a_dirs, *b_dirs]
        stems: list[dict[str, Path]] = []
        for d in dirs:
            by_stem: dict[str, Path] = {}
            for path in list_images(d):
                if path.stem in by_stem:
                    self.report.defects.append(
                        f"{path}: same name as {by_stem[path.stem].name}; keep one file per name"
                    )
                    continue
                by_stem[path.stem] = path
            stems.append(by_stem)
        complete = set.intersection(*(set(s) for s in stems)) if stems else set()
        for by_stem in stems:
            for stem, path in by_stem.items():
                if stem not in complete:
                    missing = [str(o.name) for o, s in zip(dirs, stems) if stem not in s]
                    self.report.defects.append(
                        f"{path}: no partner named {stem}.* in {', '.join(missing)}/"
                    )
        names = "/, ".join(d.name for d in dirs)
        self.report.folders.append(f"{folder}: paired folders {names}/, {len(complete)} pair(s)")
        infos = self.inspect([p for s in stems for p in s.values()])
        for stem in sorted(complete):
            sized = {s[stem]: infos[s[stem]] for s in stems if s[stem] in infos}
            if len({(i.width, i.height) for i in sized.values()}) > 1:
                listed = ", ".join(f"{f} {i.width}x{i.height}" for f, i in sized.items())
                self.report.defects.append(f"pair {stem}: sizes differ: {listed}")


def check_dataset(root: str | Path, workers: int | None = None) -> CheckReport:
    """Inspect every image under `root` (see the module doc); never stops at a bad file."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: folder not found; check the path")
    checker = _Checker(root, workers)
    folders = _dataset_folders(root)
    if not folders:
        checker.report.defects.append(f"{root}: no images and no A/ and B/ folders")
    for folder in folders:
        if _is_paired(folder):
            checker.paired(folder)
        else:
            checker.aligned(folder)
        others = [p for p in folder.iterdir() if p.is_file() and not is_image(p)]
        others = [p for p in others if not p.name.startswith(".")]
        if others:
            checker.report.folders.append(
                f"{folder}: {len(others)} other file(s) ignored, e.g. {others[0].name}"
            )
    return checker.report
