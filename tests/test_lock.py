"""One writer per output folder: a live holder refuses the others; a killed one blocks nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_config, write_aligned
from pix2pix.evaluation.evaluate import evaluate
from pix2pix.lock import LOCK_NAME, FolderLocked, folder_lock, sibling_lock
from pix2pix.segmentation import SegmenterConfig, train_segmenter
from pix2pix.training.loop import fit

HOLD = """
import sys
from pix2pix.lock import folder_lock
with folder_lock(sys.argv[1], "test"):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
"""


def hold(lock_file: Path) -> subprocess.Popen:
    """Another process holding `lock_file`; returns once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def release(proc: subprocess.Popen) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_a_live_holder_refuses_train_segmenter_and_evaluate(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    cfg = tiny_config(data, train={"max_steps": 1})
    run = tmp_path / "run"
    run.mkdir()
    proc = hold(run / LOCK_NAME)
    try:
        with pytest.raises(FolderLocked, match=rf"run folder {run} is in use by pid {proc.pid} on"):
            fit(cfg, run)
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        release(proc)
    fit(cfg, run)  # the holder is gone: the folder is free
    assert (run / "latest").is_dir() and not (run / LOCK_NAME).exists()

    seg_out, report = tmp_path / "seg", tmp_path / "report"
    seg_cfg = SegmenterConfig(root=str(data), palette="facades", size=32, width=2, epochs=1,
                              batch_size=4, device="cpu")  # fmt: skip
    for target, job in (
        (seg_out, lambda: train_segmenter(seg_cfg, seg_out)),
        (report, lambda: evaluate(run, data, report, device="cpu", progress=False)),
    ):
        proc = hold(sibling_lock(target))
        try:
            with pytest.raises(FolderLocked, match=f"pid {proc.pid}"):
                job()
            assert not target.exists()
        finally:
            release(proc)
        job()
        assert target.is_dir() and not sibling_lock(target).exists()


def test_a_killed_holder_leaves_a_file_but_no_lock(tmp_path: Path) -> None:
    lock_file = tmp_path / LOCK_NAME
    proc = hold(lock_file)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert lock_file.exists()  # what a kill -9 or a power cut leaves behind ...
    with folder_lock(lock_file, "the folder"):  # ... is not a held lock
        assert str(os.getpid()) in lock_file.read_text()
    assert not lock_file.exists()


def test_one_process_cannot_take_its_own_lock_twice(tmp_path: Path) -> None:
    # POSIX locks do not conflict within a process (and closing a second descriptor
    # would drop the first): the lock refuses by name instead
    lock_file = tmp_path / LOCK_NAME
    with folder_lock(lock_file, "the folder"):
        again = folder_lock(lock_file, "the folder")
        with pytest.raises(FolderLocked, match="already being written by this process"), again:
            pass
        assert lock_file.exists()
        other = subprocess.run([sys.executable, "-c", HOLD, str(lock_file)], capture_output=True,
                               text=True, input="")  # fmt: skip
        assert other.returncode != 0 and f"in use by pid {os.getpid()}" in other.stderr
