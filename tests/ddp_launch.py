"""Starting tests' multi-process jobs: torchrun with 2 local CPU processes (gloo), each
launch under a timeout, so a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
LAUNCH_TIMEOUT = 180  # seconds; a launch takes ~10 s on 2 busy cores
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# 8 images, 2 ranks x batch 2 per rank: 2 steps per epoch, global batch 4
TINY = [
    "--generator", "unet_32", "--ngf", "8", "--ndf", "8", "--load-size", "36",
    "--crop-size", "32", "--batch-size", "2", "--workers", "0", "--sample-every", "0",
    "--keep-every", "0", "--device", "cpu", "--no-progress",
]  # fmt: skip

# the paper's recipe: 12 + 12 epochs of TINY on 8 images, 48 steps
PAPER = ["--epochs", "12", "--decay-epochs", "12", "--seed", "3"]


def torchrun(*args: str | Path) -> list[str]:
    """The launch command: torchrun with 2 local processes.

    --standalone: torchrun's rendezvous store binds a free port itself (no race between
    choosing a port and binding it).
    """
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        *[str(a) for a in args],
    ]  # fmt: skip


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    """Wait for a launch; if it hangs, stop it and its workers, and fail."""
    try:
        out, err = proc.communicate(timeout=LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        # the workers run in their own sessions: killing torchrun alone would orphan
        # them, while a SIGTERM makes torchrun stop them (SIGKILL after 30 s)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        pytest.fail(f"{' '.join(proc.args)} did not finish in {LAUNCH_TIMEOUT} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def launch(*args: str | Path) -> subprocess.CompletedProcess:
    pipe = subprocess.PIPE
    return finish(subprocess.Popen(torchrun(*args), env=ENV, stdout=pipe, stderr=pipe, text=True))
