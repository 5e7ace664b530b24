"""The Hugging Face Hub: hf:OWNER/NAME loads from the library's own cache (offline here),
`pix2pix push` calls the library's API with the checkpoint's files (replaced at its
boundary: nothing here reaches the Hub)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import error_line, run_cli, tiny_config
from pix2pix.errors import UserError
from pix2pix.hub import parse_ref
from pix2pix.training.loop import fit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(root: Path, repo: str, ckpt: Path) -> Path:
    """A Hub cache holding `ckpt` as model `repo` at main, in huggingface_hub's layout."""
    owner, name = repo.split("/")
    model = root / f"models--{owner}--{name}"
    snapshot = model / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (model / "refs").mkdir()
    (model / "refs" / "main").write_text(COMMIT)
    for f in ckpt.iterdir():
        if f.name != "training_state.pt":
            shutil.copy(f, snapshot / f.name)
    return root


def test_hf_checkpoint_loads_offline_from_the_cache(aligned_data: Path, tmp_path: Path) -> None:
    latest = fit(tiny_config(aligned_data, train={"max_steps": 1}), tmp_path / "run")
    cache = hub_cache(tmp_path / "hub", "someone/facades", latest)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    code = (
        "import sys, numpy as np, pix2pix; m = pix2pix.load(sys.argv[1], device='cpu'); "
        "print(m.config.model.generator, np.asarray(m.translate(np.zeros((40, 40, 3), "
        "np.uint8))).shape)"
    )
    done = subprocess.run([sys.executable, "-c", code, "hf:someone/facades"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["unet_32", "(40,", "40,", "3)"]
    cli = [sys.executable, "-m", "pix2pix", "translate", "--checkpoint", "hf:someone/missing",
           str(aligned_data / "1.png"), "--out", str(tmp_path / "o")]  # fmt: skip
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "hf:someone/missing: not in the local Hub cache" in error_line(done.stderr)


def test_hub_refs_are_checked() -> None:
    assert parse_ref("hf:a/b") == ("a/b", None) and parse_ref("hf:a/b@v1") == ("a/b", "v1")
    for bad in ("hf:a", "hf:/b", "hf:a/b/c"):
        with pytest.raises(UserError, match="not a Hub model id"):
            parse_ref(bad)


class HubBoundary:
    """HfApi with only its network calls replaced: `upload_folder` itself (its file
    selection by allow_patterns, the operations it builds) is the library's own."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from huggingface_hub import HfApi, hf_api

        self.repos: list[dict] = []
        self.sent: dict[str, bytes] = {}  # path in the repo -> the bytes uploaded
        monkeypatch.setattr(hf_api, "is_xet_available", lambda: False)  # one plain commit
        monkeypatch.setattr(HfApi, "_validate_yaml", lambda *a, **k: None)
        monkeypatch.setattr(HfApi, "create_repo", self.create_repo)
        monkeypatch.setattr(HfApi, "create_commit", self.create_commit)

    def create_repo(self, repo_id: str, **kwargs: object) -> str:
        self.repos.append({"repo_id": repo_id, **kwargs})
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, *, operations: list, **kwargs: object) -> None:
        for op in operations:
            self.sent[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()


def test_push_sends_what_loads_and_no_local_path(
    aligned_data: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = HubBoundary(monkeypatch)
    first = fit(tiny_config(aligned_data, train={"max_steps": 1}), tmp_path / "first")
    cfg = tiny_config(aligned_data, train={"max_steps": 1, "init_from": str(first)},
                      monitor={"val_data": str(aligned_data)})  # fmt: skip
    latest = fit(cfg, tmp_path / "run")
    before = {f.name: f.read_bytes() for f in latest.iterdir()}
    code, out, err = run_cli(capsys, "push", tmp_path / "run", "me/facades", "--private")
    assert code == 0, err
    assert hub.repos == [{"repo_id": "me/facades", "private": True, "exist_ok": True}]
    assert sorted(hub.sent) == ["README.md", "config.json", "discriminator.safetensors",
                                "generator.safetensors"]  # never training_state.pt  # fmt: skip
    for name in ("discriminator.safetensors", "generator.safetensors"):
        assert hub.sent[name] == before[name]
    for name in ("README.md", "config.json"):
        text = hub.sent[name].decode()
        assert str(tmp_path) not in text and str(Path.home()) not in text, text
    meta = json.loads(hub.sent["config.json"])
    assert meta["config"]["data"]["root"] == aligned_data.name
    assert meta["config"]["monitor"]["val_data"] == aligned_data.name
    assert meta["config"]["train"]["init_from"] == "latest"
    assert "fine-tuned from `latest`" in hub.sent["README.md"].decode()
    assert {f.name: f.read_bytes() for f in latest.iterdir()} == before  # left as it was
    assert "hf:me/facades" in out
    code, _, err = run_cli(capsys, "push", tmp_path / "nothing", "me/x")
    assert code == 2 and "no such checkpoint" in error_line(err)


def test_push_of_an_import_names_its_source_file_only(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pix2pix.interop import import_official

    hub = HubBoundary(monkeypatch)
    source = Path(__file__).parent / "fixtures" / "official" / "unet_256_ngf4_batch.pth"
    out, _ = import_official(source, tmp_path / "ck")
    code, _, err = run_cli(capsys, "push", out, "me/imported")
    assert code == 0, err
    meta = json.loads(hub.sent["config.json"])
    assert meta["metadata"]["imported_from"]["generator"] == source.name
    sent = hub.sent["README.md"].decode() + hub.sent["config.json"].decode()
    assert str(source.parent) not in sent


def test_a_failed_upload_is_one_line(
    aligned_data: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, errors

    def offline(*args: object, **kwargs: object) -> None:
        raise errors.OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    fit(tiny_config(aligned_data, train={"max_steps": 1}), tmp_path / "run")
    code, _, err = run_cli(capsys, "push", tmp_path / "run", "me/facades")
    assert code == 2 and "Traceback" not in err
    assert "hf:me/facades: the upload failed (Cannot reach" in error_line(err)
