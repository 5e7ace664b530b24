"""Config: validation messages, JSON round trip, help text for every field."""

from __future__ import annotations

import dataclasses

import pytest

from pix2pix.config import (
    SECTIONS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    field_docs,
    load_config_file,
)
from pix2pix.config.recipes import RECIPES
from pix2pix.config.run import with_recipe
from pix2pix.errors import ConfigError, render


def test_json_round_trip_is_lossless() -> None:
    cfg = RunConfig(
        model=ModelConfig(generator="resnet_6blocks", norm="instance", in_channels=1),
        data=DataConfig(root="x", direction="BtoA", flip=False),
        train=TrainConfig(max_steps=7, gan_loss="lsgan", lr=1e-3),
    )
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_unknown_keys_are_named() -> None:
    raw = RunConfig().to_dict()
    raw["train"]["warp_speed"] = 9
    with pytest.raises(ConfigError, match="warp_speed"):
        RunConfig.from_dict(raw)


@pytest.mark.parametrize(
    ("build", "message", "flags"),
    [
        (lambda: DataConfig(load_size=256, crop_size=300), "crop_size 300 is larger than load_size",
         "--crop-size 300 is larger than --load-size"),
        (lambda: TrainConfig(batch_size=0), "batch_size 0", "--batch-size 0"),
        (lambda: TrainConfig(lr=-1.0), "lr -1.0", "--lr -1.0"),
        (lambda: TrainConfig(epochs=0, decay_epochs=0), "epochs and decay_epochs are both 0",
         "--epochs and --decay-epochs are both 0"),
        (lambda: ModelConfig(generator="unet_300"), "generator 'unet_300'",
         "--generator 'unet_300'"),
        (lambda: ModelConfig(norm="group"), "norm 'group' is not valid; choose one of: batch",
         "--norm 'group'"),
        (lambda: ModelConfig(dropout=1.0), "dropout 1.0", "--dropout 1.0"),
        (lambda: DataConfig(direction="AB"), "direction 'AB'", "--direction 'AB'"),
        (lambda: DataConfig(root=3), "root 3 is not valid; give a string", "--data 3"),
        (lambda: TrainConfig(max_steps=-1), "max_steps -1", "--max-steps -1"),
    ],
)  # fmt: skip
def test_invalid_values_name_the_field_and_the_cli_the_flag(
    build, message: str, flags: str
) -> None:
    # Python callers read the argument's name; the CLI prints the same error with flags
    with pytest.raises(ConfigError) as exc:
        build()
    assert str(exc.value).startswith(message), str(exc.value)
    assert exc.value.for_cli().startswith(flags), exc.value.for_cli()
    assert "--" not in str(exc.value)


def test_crop_only_allows_any_load_size() -> None:
    assert DataConfig(preprocess="crop", load_size=100, crop_size=200).crop_size == 200


def test_every_field_has_help_text() -> None:
    for cls in SECTIONS.values():
        docs = field_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
        assert not missing, f"{cls.__name__}: {missing}"


def test_differences_ignore_runtime_fields() -> None:
    a = RunConfig()
    b = a.replace(train={"max_steps": 5, "device": "cpu"}, data={"root": "elsewhere"})
    assert a.differences(b) == []
    c = a.replace(model={"ngf": 32})
    assert [render(d, flags=False) for d in a.differences(c)] == ["ngf 32 (checkpoint: 64)"]
    assert [render(d, flags=True) for d in a.differences(c)] == ["--ngf 32 (checkpoint: 64)"]


def test_load_config_file_reads_checkpoint_configs(tmp_path) -> None:
    cfg = RunConfig(train=TrainConfig(seed=3))
    (tmp_path / "plain.json").write_text(cfg.to_json())
    (tmp_path / "ckpt.json").write_text('{"config": ' + cfg.to_json() + ', "progress": {}}')
    assert load_config_file(tmp_path / "plain.json") == cfg
    assert load_config_file(tmp_path / "ckpt.json") == cfg
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "nope.json")


def test_label_palette_round_trips_through_config_and_checkpoint(tmp_path) -> None:
    from pix2pix.checkpoint import Progress, read_meta, save_checkpoint
    from pix2pix.nets import build_generator
    from pix2pix.segmentation import parse_palette

    cfg = RunConfig(
        model=ModelConfig(generator="unet_32", ngf=4, ndf=4, in_channels=3, out_channels=3),
        data=DataConfig(palette="facades"),
    )
    assert RunConfig.from_json(cfg.to_json()) == cfg
    # a file's palette is stored inline: the checkpoint does not need the file again
    (tmp_path / "labels.json").write_text('{"colors": [[0, 0, 0], [9, 8, 7]], "names": ["a", "b"]}')
    from_file = cfg.replace(data={"palette": str(tmp_path / "labels.json")})
    save_checkpoint(
        tmp_path / "ck", from_file, Progress(), {"generator": build_generator(from_file.model)}
    )
    (tmp_path / "labels.json").unlink()
    saved = read_meta(tmp_path / "ck")[0].data.palette
    assert parse_palette(saved).colors == ((0, 0, 0), (9, 8, 7))
    assert parse_palette(saved).names == ("a", "b")
    # runtime: a resumed run may record another palette; configs from before it have none
    assert cfg.differences(from_file) == []
    raw = cfg.to_dict()
    del raw["data"]["palette"]
    assert RunConfig.from_dict(raw).data.palette == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sunset", "--palette 'sunset' is not a preset (facades), JSON, or a file"),
        ("[[0, 0, 0], [1, 2]]", "--palette (inline JSON): expected a JSON list of [R, G, B]"),
    ],
)
def test_a_bad_palette_is_one_line_and_exit_2(capsys, tmp_path, value: str, message: str) -> None:
    from conftest import error_line, run_cli

    code, _, err = run_cli(capsys, "train", "--data", tmp_path, "--out", tmp_path / "run",
                       "--palette", value)  # fmt: skip
    assert code == 2 and message in error_line(err)
    assert not (tmp_path / "run").exists()


# --- recipes -------------------------------------------------------------------------


def _has(config: RunConfig, recipe: str) -> bool:
    """Whether `config` holds every setting of `recipe`."""
    return all(
        getattr(getattr(config, section), name) == value
        for section, values in RECIPES[recipe].items()
        for name, value in values.items()
    )


def test_a_recipe_means_the_same_in_python_as_on_the_command_line() -> None:
    lib = RunConfig(train=TrainConfig(recipe="improved"))  # no flags, no with_recipe
    assert _has(lib, "improved") and lib.train.recipe == "improved"
    assert lib == with_recipe({}, {"train": {"recipe": "improved"}})
    assert RunConfig().replace(train={"recipe": "improved"}) == lib
    # what a setting gives explicitly wins (also a config file's), the recipe fills the rest
    mine = RunConfig(train=TrainConfig(recipe="improved", ema_decay=0.5))
    assert mine.train.ema_decay == 0.5 and mine.model.upsample == "resize-conv"
    assert with_recipe({"train": {"recipe": "improved", "ema_decay": 0.5}}, {}) == mine
    assert with_recipe({}, {}) == RunConfig() and not _has(RunConfig(), "improved")
    for cfg in (lib, mine):  # config.json reads back as the run it records
        assert RunConfig.from_json(cfg.to_json()) == cfg
    resnet = ModelConfig(generator="resnet_6blocks")
    with pytest.raises(ConfigError, match="recipe improved sets upsample resize-conv: upsample"):
        RunConfig(model=resnet, train=TrainConfig(recipe="improved"))


def test_a_recipe_option_turned_back_to_the_papers_is_recorded_as_trained(caplog) -> None:
    with caplog.at_level("WARNING", logger="pix2pix"):
        own = with_recipe({}, {"train": {"recipe": "improved", "ema_decay": 0.0}})
    # the flag wins, and the config says what trains: the paper's recipe plus the
    # improved recipe's other options, written out (a recipe cannot record an exception)
    assert own.train.ema_decay == 0.0 and own.train.recipe == "paper"
    assert own.model.upsample == "resize-conv" and own.train.augment == "translation,cutout,color"
    assert "recorded as --recipe paper" in caplog.text and "--ema-decay 0.0" in caplog.text
    assert RunConfig.from_json(own.to_json()) == own
    # a config.json that records improved beside an option turned off loads as it trained
    raw = RunConfig(train=TrainConfig(recipe="improved")).to_dict()
    raw["model"]["upsample"] = "transpose"
    old = RunConfig.from_dict(raw)
    assert old.model.upsample == "transpose" and old.train.recipe == "paper"
    assert old.train.ema_decay == 0.999
