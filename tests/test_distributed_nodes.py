"""Multi-process training on two nodes and with a failing rank: the job stops, saves and
resumes as a whole, and an error on one rank ends every rank instead of hanging."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write_aligned
from ddp_launch import ENV, LAUNCH_TIMEOUT, PAPER, TINY, launch
from pix2pix.checkpoint import read_meta
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.data.pairs.sampler import EpochBatchSampler
from pix2pix.training.runlog import read_log


def node_agent(node_rank: int, port: int, *args: str | Path) -> list[str]:
    """One torchrun agent as node `node_rank` of 2 (one process each), meeting the other
    through a c10d rendezvous on localhost; node 0 hosts the rendezvous store."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
        "--node-rank", str(node_rank), "--nproc-per-node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-nodes",
        "--rdzv-conf", f"is_host={int(node_rank == 0)}", "--local-addr", "127.0.0.1",
        "--max-restarts", "0", *[str(a) for a in args],
    ]  # fmt: skip


def test_two_nodes_stop_on_sigterm_to_one_agent_and_resume_on_one_node(
    tmp_path: Path,
) -> None:
    data = write_aligned(tmp_path / "data", count=8)
    with socket.socket() as s:  # a free port for the rendezvous (node 0 binds it next)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "run"
    train = ["-m", "pix2pix", "train", "--out", run, *TINY, "--data", data, *PAPER]
    outputs = [tmp_path / f"node{r}.txt" for r in (0, 1)]
    nodes = [
        subprocess.Popen(node_agent(r, port, *train), env=ENV, stdout=out.open("w"),
                         stderr=subprocess.STDOUT)
        for r, out in enumerate(outputs)
    ]  # fmt: skip
    log = run / "log.jsonl"
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    while time.monotonic() < deadline and all(n.poll() is None for n in nodes):
        if log.exists() and len(log.read_text().splitlines()) >= 6:
            break
        time.sleep(0.01)  # polling the log for progress, not waiting for an outcome
    assert all(n.poll() is None for n in nodes), "a node ended before it could be stopped"
    # node 0's agent is preempted: it passes SIGTERM to its worker, the two ranks agree
    # on a step through the process group, rank 0 saves, both workers return
    nodes[0].send_signal(signal.SIGTERM)
    for n in nodes:
        try:
            n.wait(timeout=LAUNCH_TIMEOUT)
        except subprocess.TimeoutExpired:
            for m in nodes:
                m.send_signal(signal.SIGTERM)
            pytest.fail(f"a node agent did not finish in {LAUNCH_TIMEOUT} s after SIGTERM")
    node0, node1 = (out.read_text() for out in outputs)
    assert nodes[1].returncode == 0, node1[-3000:]  # the other node finished cleanly
    assert "stop requested at step" in node0 and "checkpoint: " in node0  # rank 0 saved
    assert "SIGKILL" not in node0 + node1
    _, progress = read_meta(run / "latest")
    assert 6 <= progress.step < 48 and progress.world_size == 2
    assert [r["step"] for r in read_log(log)] == list(range(1, progress.step + 1))

    # one node, one plain process, takes the run over (the world size change as for
    # one machine: the position in the epoch is a whole number of 1-process batches)
    resumed = subprocess.run(
        [sys.executable, "-m", "pix2pix", "train", "--out", run, "--resume",
         "--max-steps", str(progress.step + 3)],
        env=ENV, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, after = read_meta(run / "latest")
    assert (after.step, after.world_size) == (progress.step + 3, 1)
    assert [r["step"] for r in read_log(log)] == list(range(1, after.step + 1))


def test_a_failing_rank_fails_the_whole_job(tmp_path: Path) -> None:
    # a truncated image that only rank 1 reads, in its second batch: rank 1 raises while
    # rank 0 waits for it in a collective; the job must end, non-zero, not hang
    data = write_aligned(tmp_path / "data", count=8)
    rank1 = list(EpochBatchSampler(8, 2, seed=0, rank=1, world_size=2))
    _, index = rank1[1][0]
    bad = find_pairs(data)[index].a
    bad.write_bytes(bad.read_bytes()[:200])
    run = tmp_path / "run"
    flags = ["--data", data, "--cache", "off", "--epochs", "1", "--decay-epochs", "0"]
    done = launch("-m", "pix2pix", "train", "--out", run, "--save-every", "1", *TINY, *flags)
    assert done.returncode != 0
    assert f"pix2pix: error: {bad}: cannot read image" in done.stderr
    _, progress = read_meta(run / "latest")  # the checkpoint before the failure is whole
    assert progress.step == 1
