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


# ---------------------------------------------------------------- generic page parts


def page_html(title: str, parts: list[str]) -> str:
    """A whole page: the title, then `parts` (HTML fragments) in order."""
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}{_TABLE_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


_TABLE_STYLE = """
table.metrics td, table.metrics th { border-bottom: 1px solid #ddd; text-align: right; }
table.metrics td:first-child, table.metrics th:first-child { text-align: left; }
img.plot { max-width: 100%; }
"""


def format_value(value: object) -> str:
    """Numbers with 4 significant digits, None as a dash, anything else as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table_html(headers: list[str], rows: list[list[object]]) -> str:
    """A metric table: one header row, then one row per list of values."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row) + "</tr>\n"
        for row in rows
    )
    return f'<table class="metrics"><tr>{head}</tr>\n{body}</table>'


def heading_html(text: str, level: int = 2) -> str:
    return f"<h{level}>{html.escape(text)}</h{level}>"


def paragraph_html(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def image_html(src: str, alt: str, css_class: str = "plot") -> str:
    return f'<img class="{css_class}" src="{html.escape(src)}" alt="{html.escape(alt)}">'


def image_rows_html(columns: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """A table of images: one row per (label, [image paths relative to the page])."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = []
    for label, images in rows:
        cells = "".join(
            f'<td><img src="{html.escape(src)}" alt="{html.escape(col)}"></td>'
            for col, src in zip(columns, images)
        )
        body.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"


def write_page(path: Path, title: str, parts: list[str]) -> Path:
    """Write `page_html(title, parts)` atomically to `path`."""
    atomic_write_text(Path(path), page_html(title, parts))
    return Path(path)


def write_image_table(
    path: Path,
    title: str,
    columns: list[str],
    rows: list[tuple[str, list[Path]]],
    notes: list[str] = (),  # type: ignore[assignment]
) -> Path:
    """A page at `path`: `notes`, then one row of images per (label, [image files]) in
    `rows`, linked relative to the page."""
    path = Path(path)
    rel = [
        (label, [Path(p).relative_to(path.parent).as_posix() for p in imgs]) for label, imgs in rows
    ]
    parts = [paragraph_html(n) for n in notes] + [image_rows_html(columns, rel)]
    return write_page(path, title, parts)
