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
    with folder_lock(lock_file, "the folder"):  # ... is not a held lock: we hold it now
        # asked from another process: reading the file here would drop our POSIX lock
        # (closing any descriptor of a file releases the process's locks on it)
        assert f"in use by pid {os.getpid()}" in _refusal(lock_file)
    assert not lock_file.exists()


def _refusal(lock_file: Path) -> str:
    """What another process is told when it asks for `lock_file` (it must be refused)."""
    other = subprocess.run([sys.executable, "-c", HOLD, str(lock_file)], capture_output=True,
                           text=True, input="", timeout=60)  # fmt: skip
    assert other.returncode != 0, "another process took a lock that is held"
    return other.stderr


def test_a_linked_out_takes_the_real_folders_lock_and_stays_a_link(
    aligned_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    fit(tiny_config(aligned_data, train={"max_steps": 1}), run)
    seg_cfg = SegmenterConfig(root=str(aligned_data), palette="facades", size=32, width=2,
                              epochs=1, batch_size=4, device="cpu")  # fmt: skip

    def report(out: Path, **kw: bool) -> None:
        evaluate(run, aligned_data, out, device="cpu", progress=False, **kw)

    for name, job in (("seg", lambda out, **kw: train_segmenter(seg_cfg, out, **kw)),
                      ("report", report)):  # fmt: skip
        real, link = tmp_path / f"disk_{name}" / name, tmp_path / f"{name}_link"
        real.mkdir(parents=True)
        link.symlink_to(real, target_is_directory=True)
        proc = hold(sibling_lock(real))  # a writer of the real folder, by its own name
        try:
            with pytest.raises(FolderLocked, match=f"pid {proc.pid}"):
                job(link)
        finally:
            release(proc)
        for overwrite in (False, True):  # written, then replaced: through the link
            job(link, overwrite=overwrite)
            assert link.is_symlink() and link.resolve() == real.resolve()
            assert sorted(p.name for p in real.iterdir()) == sorted(p.name for p in link.iterdir())
            assert any(real.iterdir())
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
        assert sorted(p.name for p in real.parent.iterdir()) == [name]  # no .NAME.old, .lock


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
