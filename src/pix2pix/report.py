"""HTML pages that show images side by side (demo results, evaluation reports)."""

from __future__ import annotations

import html
from pathlib import Path

from pix2pix.fileio import atomic_write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 4px 8px; text-align: center; }
td img { image-rendering: pixelated; width: 192px; }
.note { color: #555; max-width: 50em; }
"""


def image_table_html(
    title: str,
    columns: list[str],
    rows: list[tuple[str, list[str]]],
    notes: list[str] = (),  # type: ignore[assignment]
) -> str:
    """A page with `notes` then one table row per (label, [image paths]) in `rows`.

    Image paths are written as given: make them relative to the page.
    """
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = []
    for label, images in rows:
        cells = "".join(
            f'<td><img src="{html.escape(src)}" alt="{html.escape(col)}"></td>'
            for col, src in zip(columns, images)
        )
        body.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    paragraphs = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>{paragraphs}\n"
        f"<table><tr>{head}</tr>\n" + "\n".join(body) + "\n</table></body></html>\n"
    )


def write_image_table(
    path: Path,
    title: str,
    columns: list[str],
    rows: list[tuple[str, list[Path]]],
    notes: list[str] = (),  # type: ignore[assignment]
) -> Path:
    """Write `image_table_html` to `path`, linking the images relative to it."""
    path = Path(path)
    rel = [
        (label, [Path(p).relative_to(path.parent).as_posix() for p in imgs]) for label, imgs in rows
    ]
    atomic_write_text(path, image_table_html(title, columns, rel, list(notes)))
    return path
