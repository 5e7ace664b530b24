"""Per-step training log: one JSON object per line in RUN_DIR/log.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pix2pix.fileio import atomic_write_text


class RunLog:
    """Appends step records; on resume drops records past the checkpoint's step.

    The steps a killed run did after its last checkpoint are done again on resume, so
    their old records are removed first: the log then reads as one uninterrupted run.
    """

    def __init__(self, path: Path, resume_step: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class NullLog(RunLog):
    """The log of ranks other than 0 in a multi-process run: records go nowhere."""

    def __init__(self) -> None:
        pass

    def write(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def read_log(path: Path) -> list[dict[str, Any]]:
    """All complete records (a line cut short by a kill is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
