"""The facades quality benchmark runs end to end on tiny facades-like data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.quality import markdown, run, step_seconds
from test_segmentation import write_label_pairs


def test_quality_benchmark_writes_its_table(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("pix2pix.evaluation.fid.default_weights_path", lambda: None)  # FID: skipped
    write_label_pairs(tmp_path / "facades" / "train", count=4, seed=0)
    write_label_pairs(tmp_path / "facades" / "test", count=3, seed=1)
    args = argparse.Namespace(
        data=str(tmp_path / "facades"), out=str(tmp_path / "q"), size=32, ngf=4, epochs=None,
        minutes=60.0, max_steps=3, segmenter=None, segmenter_epochs=1, seed=0, device="cpu",
    )  # fmt: skip
    result = run(args)
    assert result["protocol"]["steps"] == 3 and result["evaluation"]["images"] == 3
    logged = step_seconds(tmp_path / "q" / "run")
    assert len(logged) == 3 and result["protocol"]["train_minutes"] == sum(logged) / 60
    saved = json.loads((tmp_path / "q" / "quality.json").read_text())
    assert saved["evaluation"]["mean"] == result["evaluation"]["mean"]
    table = (tmp_path / "q" / "quality.md").read_text()
    assert table == markdown(result)
    assert "| FID (lower is better) | not measured |" in table
    assert "| FCN class IoU: generated / real |" in table
    assert (tmp_path / "q" / "segmenter" / "config.json").is_file()


def test_training_time_counts_each_step_once_across_a_resume(tmp_path: Path) -> None:
    # steps 3-4 ran, the process died before its checkpoint, the resumed one re-ran them
    records = [(1, 1.0), (2, 1.0), (3, 9.0), (4, 9.0), (3, 0.5), (4, 0.5), (5, 0.5)]
    lines = [json.dumps({"step": s, "sec": t, "loss_g": 1.0}) for s, t in records]
    lines.insert(2, json.dumps({"step": 2, "val": {"l1": 0.1}}))  # a record without "sec"
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    assert sorted(step_seconds(tmp_path)) == [0.5, 0.5, 0.5, 1.0, 1.0]
