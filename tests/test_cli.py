"""The `pix2pix` command end to end: help, train -> translate, demo, bad input."""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from conftest import error_line, run_cli, write_aligned, write_paired
from pix2pix.checkpoint import read_meta
from pix2pix.config import SECTIONS, field_docs, flag_name
from pix2pix.data.files.images import read_image, save_image
from pix2pix.data.tools.synthetic import LABEL_COLOURS
from pix2pix.serve.drawing import drawing_for

TINY = [
    "--generator", "unet_32", "--ngf", "4", "--ndf", "4", "--load-size", "36",
    "--crop-size", "32", "--batch-size", "2", "--epochs", "1", "--decay-epochs", "1",
    "--workers", "0", "--sample-every", "0", "--keep-every", "0", "--device", "cpu",
    "--no-progress", "--no-report",
]  # fmt: skip


def test_help_lists_the_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pix2pix", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("train", "translate", "demo", "data"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), command


def test_train_help_documents_every_flag(capsys) -> None:
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    text = "".join(out.split())  # argparse wraps the help text (also at hyphens)
    for section, cls in SECTIONS.items():
        docs = field_docs(cls)
        for f in fields(cls):
            flag = flag_name(f.name, f)
            assert re.search(rf"^\s+{flag}[\s,]", out, re.MULTILINE), flag  # its own entry
            doc = "".join(docs.get(f.name, "").split())
            assert doc and doc in text, (section, f.name)
            if cls.__dataclass_fields__[f.name].type == "bool":
                assert f"--no-{flag[2:]}" in text, flag  # both --x and --no-x
    for flag in ("--out", "--resume", "--config", "--max-image-pixels"):
        assert flag in text, flag


def test_train_then_translate(capsys, tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    code, out, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run",
                         "--direction", "BtoA", *TINY)  # fmt: skip
    assert code == 0, err
    assert "checkpoint:" in out
    save_image(np.zeros((45, 70, 3), np.uint8), tmp_path / "in" / "x.png")
    pattern = tmp_path / "in" / "*.png"
    code, out, err = run_cli(capsys, "translate", "--checkpoint", tmp_path / "run", pattern,
                         "--out", tmp_path / "out", "--eval")  # fmt: skip
    assert code == 0, err
    assert read_image(tmp_path / "out" / "x.png", 3).shape == (45, 70, 3)


def test_resume_needs_only_the_run_folder(capsys, tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    run_dir = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "--data", data, "--out", run_dir, "--max-steps", "2", *TINY
    )
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume")
    assert code == 0, err  # the run already reached its --max-steps: nothing more to do
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 2
    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume", "--max-steps", "0")
    assert code == 0, err
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    assert len(lines) == 4  # 2 epochs of 2 steps


def test_resume_applies_the_runtime_settings_of_config(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(logging.root, "handlers", [])  # log lines onto this test's stderr
    data = write_aligned(tmp_path / "data", count=4)
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", run_dir, "--max-steps", "1",
                           *TINY)  # fmt: skip
    assert code == 0, err
    config = tmp_path / "more.json"
    config.write_text(json.dumps({"train": {"max_steps": 3, "save_every": 1}}))
    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume", "--config", config)
    assert code == 0, err
    assert "resuming with changed runtime settings: --max-steps 3 (checkpoint: 1)" in err
    saved, progress = read_meta(run_dir / "latest")
    assert progress.step == 3 and saved.train.save_every == 1  # applied, and recorded
    # flags still win over the file
    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume", "--config", config,
                           "--max-steps", "4")  # fmt: skip
    assert code == 0, err
    assert read_meta(run_dir / "latest")[1].step == 4


def test_demo_end_to_end_at_a_tiny_size(capsys, tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "demo", "--out", tmp_path / "demo", "--size", "32",
                         "--steps", "6", "--train-images", "4", "--device", "cpu")  # fmt: skip
    assert code == 0, err
    lines = out.strip().splitlines()
    page = Path(next(line for line in lines if line.startswith("open ")).split()[-1])
    assert page.is_file() and page.suffix == ".html"
    # where the model is, and the three next commands
    assert lines[0] == f"checkpoint: {tmp_path / 'demo' / 'run' / 'latest'}"
    assert (tmp_path / "demo" / "run" / "latest" / "generator.safetensors").is_file()
    nexts = [line.split()[1] for line in lines[lines.index("next:") + 1 :]]
    assert nexts == ["translate", "serve", "train"]
    links = re.findall(r'src="([^"]+)"', page.read_text())
    assert len(links) == 16 * 3
    assert all((page.parent / link).is_file() for link in links)
    assert "Mean L1 error" in page.read_text()
    # the checkpoint records the label colours, for `pix2pix serve`'s drawing tools
    config, _ = read_meta(tmp_path / "demo" / "run" / "latest")
    assert config.train.recipe == "improved" and config.model.upsample == "resize-conv"
    drawing = drawing_for(config, 3, 32)
    assert drawing.mode == "palette" and drawing.colours == [tuple(c) for c in LABEL_COLOURS]
    assert drawing.names == ["sky", "ground", "building", "sun", "tree"]
    # running it again reuses the finished run
    code, out2, err = run_cli(capsys, "demo", "--out", tmp_path / "demo", "--size", "32",
                          "--steps", "6", "--train-images", "4", "--device", "cpu")  # fmt: skip
    assert code == 0 and out2 == out, err


# ------------------------------------------------------------------ bad input


def _bad_dataset(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A dataset folder with one planted defect, and what the message must name."""
    data = tmp_path / "data"
    if kind == "missing":
        return data, "data: dataset folder not found"
    if kind == "empty":
        data.mkdir()
        return data, "data: no images found"
    if kind in ("unreadable", "truncated"):
        write_aligned(data, count=4)
        bad = data / "3.png"
        if kind == "unreadable":
            bad.write_text("not a png")
        else:
            bad.write_bytes(bad.read_bytes()[:150])
        return data, "3.png: cannot read image"
    if kind == "mismatch":
        write_paired(data, count=3)
        save_image(np.zeros((20, 40, 3), np.uint8), data / "B" / "img2.png")
        return data, "img2.png: size 40x20 differs from its partner"
    if kind == "lonely":
        write_paired(data, count=3)
        save_image(np.zeros((40, 40, 3), np.uint8), data / "A" / "solo.png")
        return data, "solo.png: no partner named solo"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["missing", "empty", "unreadable", "truncated", "mismatch", "lonely"]
)
def test_bad_dataset_gets_one_line_and_exit_2(capsys, tmp_path: Path, kind: str) -> None:
    data, expected = _bad_dataset(tmp_path, kind)
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run", *TINY)
    assert code == 2
    assert expected in error_line(err)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--crop-size", "64"], "--crop-size 64 is larger than --load-size 36"),
        (["--preprocess", "crop", "--crop-size", "64"], "is smaller than --crop-size 64"),
        (["--batch-size", "0"], "--batch-size 0 is out of range"),
        (["--lr", "0"], "--lr 0.0 is out of range"),
        (["--generator", "unet_33"], "--generator 'unet_33' is not valid"),
        (["--device", "cuda:7"], "--device cuda:7"),
    ],
)
def test_bad_flag_values(capsys, tmp_path: Path, flags: list[str], expected: str) -> None:
    data = write_aligned(tmp_path / "data", count=2)
    code, _, err = run_cli(
        capsys, "train", "--data", data, "--out", tmp_path / "run", *TINY, *flags
    )
    assert code == 2
    assert expected in error_line(err)


def test_bad_checkpoints(capsys, tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    run_dir = tmp_path / "run"
    assert (
        run_cli(capsys, "train", "--data", data, "--out", run_dir, "--max-steps", "1", *TINY)[0]
        == 0
    )
    ckpt = run_dir / "latest"
    config = (ckpt / "config.json").read_text()
    (ckpt / "config.json").write_text(config.replace('"format_version": 1', '"format_version": 7'))
    code, _, err = run_cli(
        capsys, "translate", "--checkpoint", run_dir, data, "--out", tmp_path / "o"
    )
    assert code == 2 and "checkpoint format version 7" in error_line(err)
    (ckpt / "config.json").write_text(config)
    (ckpt / "training_state.pt").rename(tmp_path / "state.pt")
    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume")
    assert code == 2 and "missing training_state.pt" in error_line(err)
    code, _, err = run_cli(
        capsys, "translate", "--checkpoint", tmp_path / "nowhere", data, "--out", tmp_path / "o"
    )
    assert code == 2 and "nowhere: no such checkpoint" in error_line(err)


def test_a_failed_resume_leaves_the_checkpoint_intact(capsys, tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    run_dir = tmp_path / "run"
    assert (
        run_cli(capsys, "train", "--data", data, "--out", run_dir, "--max-steps", "1", *TINY)[0]
        == 0
    )
    before = {p.name: p.read_bytes() for p in (run_dir / "latest").iterdir()}
    log_before = (run_dir / "log.jsonl").read_bytes()
    (data / "2.png").write_text("broken")
    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume")
    assert code == 2 and "2.png: cannot read image" in error_line(err)
    assert {p.name: p.read_bytes() for p in (run_dir / "latest").iterdir()} == before
    assert (run_dir / "log.jsonl").read_bytes() == log_before
    # starting over into the same folder by mistake is refused too
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", run_dir, *TINY)
    assert code == 2 and "already holds a checkpoint" in error_line(err)


def test_resume_reads_the_checkpoint_config_once(capsys, tmp_path: Path, monkeypatch) -> None:
    import pix2pix.checkpoint as checkpoint

    data = write_aligned(tmp_path / "data", count=4)
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", run_dir, "--max-steps", "1",
                           *TINY)  # fmt: skip
    assert code == 0, err
    reads = []
    real = checkpoint.read_described
    monkeypatch.setattr(checkpoint, "read_described", lambda *a: reads.append(a[0]) or real(*a))
    code, _, err = run_cli(capsys, "train", "--out", run_dir, "--resume", "--max-steps", "2")
    assert code == 0, err
    assert reads == [run_dir / "latest"]  # once, by the CLI; fit uses what it read
    assert read_meta(run_dir / "latest")[1].step == 2


def test_a_command_declares_what_it_uses_where_it_is_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One registration: `uses` gives a new command the pixel guard and the backends."""
    import pix2pix.cli as cli
    from pix2pix.cli.flags import uses

    def add_probe(sub) -> None:
        p = sub.add_parser("probe")
        uses(p, networks=True, images=True)
        p.set_defaults(func=lambda args: None)

    def add_plain(sub) -> None:
        sub.add_parser("plain").set_defaults(func=lambda args: None)

    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, add_probe, add_plain])
    parser = cli.build_parser()
    probe = parser.parse_args(["probe", "--max-image-pixels", "7"])
    assert probe.max_image_pixels == 7 and probe.runs_networks
    plain = parser.parse_args(["plain"])
    assert not hasattr(plain, "max_image_pixels") and not getattr(plain, "runs_networks", False)
    called = []
    monkeypatch.setattr("pix2pix.runtime.configure_backends", lambda: called.append(1))
    cli.main(["probe"])
    cli.main(["plain"])
    assert called == [1]  # the backends for the command that runs networks only


def test_flags_are_not_matched_by_prefix_and_typos_get_the_nearest_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_aligned(tmp_path / "data", count=2)
    code, _, err = run_cli(
        capsys, "train", "--data", data, "--out", tmp_path / "run", "--epoch", "1"
    )
    assert code == 2 and not (tmp_path / "run").exists()  # --epoch is not --epochs
    assert "unrecognized arguments: --epoch 1 (did you mean --epochs?)" in error_line(err)
    code, _, err = run_cli(capsys, "trian", "--data", data)
    assert code == 2 and "invalid choice: 'trian'" in err and "(did you mean train?)" in err
    code, _, err = run_cli(capsys, "data", "edgs")
    assert code == 2 and "(did you mean edges?)" in err


def test_quiet_and_verbose_are_taken_after_the_command_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pix2pix.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["cache", "list", "-q"]).quiet is True
    assert parser.parse_args(["-q", "cache", "list"]).quiet is True  # not reset by the command
    assert parser.parse_args(["cache", "list"]).quiet is False
    assert parser.parse_args(["data", "check", "x", "--verbose"]).verbose is True


def test_every_long_command_takes_the_same_progress_flags() -> None:
    from pix2pix.cli import build_parser

    parser = build_parser()
    long = [
        ["train", "--out", "r"],
        ["translate", "x", "--checkpoint", "c", "--out", "o"],
        ["evaluate", "--checkpoint", "c", "--data", "d"],
        ["data", "download", "facades"],
    ]

    def progress(argv: list[str]) -> object:  # config flags are kept as "<section>.progress"
        parsed = vars(parser.parse_args(argv))
        return next((v for k, v in parsed.items() if k.split(".")[-1] == "progress"), "unset")

    for argv in long:
        assert progress([*argv, "--no-progress"]) is False, argv[0]
        assert progress(argv) in (True, "unset"), argv[0]  # unset: the field's default, on


def readme_commands(text: str) -> list[str]:
    """Every `pix2pix ...` command line in the README's shell blocks (continuations joined)."""
    commands = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("pix2pix "):
                commands.append(line)
    return commands


def test_every_readme_command_parses_against_the_cli() -> None:
    import shlex

    from pix2pix.cli import build_parser

    text = (Path(__file__).parent.parent / "README.md").read_text()
    commands = readme_commands(text)
    assert len(commands) >= 20
    parser = build_parser()
    for command in commands:
        argv = shlex.split(command, comments=True)[1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README command does not parse: {command}")
        assert callable(args.func), command


def test_help_shows_no_empty_defaults_and_logs_show_no_reprs() -> None:
    from pix2pix.cli import build_parser
    from pix2pix.runtime import Speed

    def parsers(parser):  # every command's parser, nested ones too
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):
                    yield from parsers(sub)

    for parser in parsers(build_parser()):
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: )" not in text, parser.prog
    assert (
        str(Speed("bf16", True, True, "max-autotune"))
        == "bf16, channels-last, compiled (max-autotune)"
    )
