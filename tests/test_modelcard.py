"""Model cards: written with every checkpoint, evaluation results appended."""

from __future__ import annotations

from pathlib import Path

from conftest import tiny_config
from pix2pix.evaluation.evaluate import evaluate
from pix2pix.interop import import_official
from pix2pix.modelcard import CARD_FILE
from pix2pix.training.loop import fit

FIXTURES = Path(__file__).parent / "fixtures" / "official"


def _front_matter(card: str) -> dict[str, str]:
    assert card.startswith("---\n")
    head = card.split("---\n")[1]
    return {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in head.splitlines()
                                               if ":" in ln)}  # fmt: skip


def test_every_checkpoint_carries_a_card_that_says_what_and_how(
    aligned_data: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(aligned_data, data={"direction": "BtoA"},
                      train={"max_steps": 3, "ema_decay": 0.5, "gan_loss": "hinge"})  # fmt: skip
    latest = fit(cfg, tmp_path / "run")
    card = (latest / CARD_FILE).read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "pix2pix" and meta["pipeline_tag"] == "image-to-image"
    assert "# pix2pix: B -> A" in card and "3-channel images" in card
    assert "`unet_32`, ngf 8, batch norm" in card and "`patch_70`, ndf 8" in card
    assert f"On `{aligned_data.name}` (BtoA), 3 steps" in card
    assert "`--ema-decay 0.5`" in card and "`--gan-loss hinge`" in card
    assert "pix2pix translate --checkpoint" in card and "pix2pix.load(" in card


def test_an_imported_checkpoints_card_says_where_it_came_from(tmp_path: Path) -> None:
    out, _ = import_official(FIXTURES / "resnet_9blocks_ngf4_instance.pth", tmp_path / "ck")
    card = (out / CARD_FILE).read_text()
    assert "Imported from `resnet_9blocks_ngf4_instance.pth`" in card
    assert "`resnet_9blocks`, ngf 4, instance norm" in card


def test_evaluate_appends_its_results_to_the_card(aligned_data: Path, tmp_path: Path) -> None:
    latest = fit(tiny_config(aligned_data, train={"max_steps": 1}), tmp_path / "run")
    before = (latest / CARD_FILE).read_text()
    evaluate(latest, aligned_data, tmp_path / "e1", device="cpu", progress=False)
    evaluate(latest, aligned_data, tmp_path / "e2", device="cpu", progress=False, eval_mode=True)
    card = (latest / CARD_FILE).read_text()
    assert card.startswith(before.rstrip("\n"))  # appended, nothing rewritten
    table = card.split("## Evaluation")[1].strip().splitlines()
    assert table[0].startswith("| split | images | inference | fid |") and len(table) == 4
    assert table[2].startswith(f"| {aligned_data.name} | 6 | paper |")
    assert table[3].startswith(f"| {aligned_data.name} | 6 | eval |")


def test_a_card_in_the_hub_cache_is_not_touched(tmp_path: Path) -> None:
    from pix2pix.modelcard import append_evaluation

    (tmp_path / "blob").write_text("# card\n")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / CARD_FILE).symlink_to(tmp_path / "blob")  # the Hub cache's layout
    append_evaluation(tmp_path / "ck", {"images": 3, "mean": {"l1": 0.1}}, "test")
    assert (tmp_path / "blob").read_text() == "# card\n"
    (tmp_path / "ck" / CARD_FILE).unlink()
    (tmp_path / "ck" / CARD_FILE).write_text("# card\n")
    append_evaluation(tmp_path / "ck", {"images": 3, "mean": {"l1": 0.1}}, "test")
    assert "| test | 3 |" in (tmp_path / "ck" / CARD_FILE).read_text()
