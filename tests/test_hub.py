"""The Hugging Face Hub: hf:OWNER/NAME loads from the library's own cache (offline here),
`pix2pix push` calls the library's API with the checkpoint's files (replaced at its
boundary: nothing here reaches the Hub)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

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


class FakeApi:
    calls: ClassVar[list[tuple[str, dict]]] = []

    def __init__(self, token: str | None = None) -> None:
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id: str, **kwargs: object) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs: object) -> None:
        folder = Path(str(kwargs["folder_path"]))
        patterns = kwargs["allow_patterns"]
        sent = sorted(f.name for f in folder.iterdir()
                      if any(Path(f.name).match(p) for p in patterns))  # fmt: skip
        self.calls.append(("upload_folder", {**kwargs, "files": sent}))


def test_push_uploads_the_checkpoint_files_and_never_the_pickle(
    aligned_data: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls = []
    fit(tiny_config(aligned_data, train={"max_steps": 1}), tmp_path / "run")
    code, out, err = run_cli(capsys, "push", tmp_path / "run", "me/facades", "--private")
    assert code == 0, err
    kinds = [name for name, _ in FakeApi.calls]
    assert kinds == ["init", "create_repo", "upload_folder"]
    assert FakeApi.calls[1][1] == {"repo_id": "me/facades", "private": True, "exist_ok": True}
    upload = FakeApi.calls[2][1]
    assert upload["repo_id"] == "me/facades" and Path(upload["folder_path"]).name == "latest"
    assert upload["files"] == ["README.md", "config.json", "discriminator.safetensors",
                               "generator.safetensors"]  # fmt: skip
    assert "hf:me/facades" in out
    code, _, err = run_cli(capsys, "push", tmp_path / "nothing", "me/x")
    assert code == 2 and "no such checkpoint" in error_line(err)
