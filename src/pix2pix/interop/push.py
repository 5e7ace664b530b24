"""`pix2pix push DIR OWNER/NAME`: a checkpoint folder to the Hugging Face Hub.

What is uploaded is what `hf:OWNER/NAME` loads: config.json, the safetensors weights and
the model card (README.md, whose front matter tags it as a pix2pix image-to-image
model); never the training state (a pickle of optimiser tensors) nor anything else in
the folder. The choice is huggingface_hub's own `upload_folder(allow_patterns=FILES)`.

Nothing local leaves the machine: the paths config.json records (the data and validation
data folders, --init-from, the files an import came from) are sent as their base names,
in config.json and wherever the card quotes them. The upload reads a staged folder of
links to the checkpoint's files, with those two rewritten; the checkpoint is unchanged.
The repository is created if needed (`--private` for a private one); the token is the
Hub library's own (HF_TOKEN, or `huggingface-cli login`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pix2pix.checkpoint import CONFIG_FILE, find_checkpoint
from pix2pix.errors import UserError
from pix2pix.hub import FILES, is_hub_ref, parse_ref
from pix2pix.modelcard import CARD_FILE

# where config.json records a local path: (section, key) under its top level
LOCAL_PATHS = (
    ("config", "data", "root"),
    ("config", "monitor", "val_data"),
    ("config", "train", "init_from"),
    ("metadata", "imported_from", "generator"),
    ("metadata", "imported_from", "discriminator"),
)


def public_meta(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """config.json's content with each local path (`LOCAL_PATHS`) cut to its base name;
    and the replacements made (path -> name). Hub references (hf:...) are kept."""
    meta = json.loads(json.dumps(meta))  # a deep copy
    replaced = {}
    for top, section, key in LOCAL_PATHS:
        holder = meta.get(top, {}).get(section)
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and value and not is_hub_ref(value):
            name = Path(value).name or value.strip("/\\")
            holder[key] = name
            replaced[value] = name
    return meta, replaced


def stage(ckpt: Path, tmp: Path) -> Path:
    """`tmp` filled with links to `ckpt`'s files (copies where links cannot be made), its
    config.json and model card rewritten without local paths (`public_meta`)."""
    meta, replaced = public_meta(json.loads((ckpt / CONFIG_FILE).read_text()))
    for f in ckpt.iterdir():
        if f.is_file() and f.name not in (CONFIG_FILE, CARD_FILE):
            try:
                os.symlink(f.resolve(), tmp / f.name)
            except OSError:
                shutil.copy2(f, tmp / f.name)
    (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    if (ckpt / CARD_FILE).is_file():
        card = (ckpt / CARD_FILE).read_text()
        for path in sorted(replaced, key=len, reverse=True):  # a path before its prefix
            card = card.replace(path, replaced[path])
        (tmp / CARD_FILE).write_text(card)
    return tmp


def push(
    folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None
) -> str:
    """Upload checkpoint (or run) folder `folder` to the Hub model `repo_id`; its URL."""
    ckpt = find_checkpoint(Path(folder))
    repo, revision = parse_ref("hf:" + repo_id.removeprefix("hf:"))
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise UserError(
            "pix2pix push needs huggingface_hub; install it with: pip install 'pix2pix[hub]'"
        ) from None
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="pix2pix-push-") as tmp:
            api.upload_folder(
                repo_id=repo,
                folder_path=str(stage(ckpt, Path(tmp))),
                allow_patterns=FILES,
                revision=revision,
                commit_message=f"pix2pix checkpoint {ckpt.name}",
            )
    except (OSError, *_network_errors()) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"hf:{repo}: the upload failed ({reason}); check the name, the token (HF_TOKEN "
            "or huggingface-cli login) and the connection"
        ) from None
    return str(url)


def _network_errors() -> tuple[type[Exception], ...]:
    """The HTTP client's own errors (huggingface_hub wraps most, not all, as OSErrors)."""
    try:
        import httpx
    except ImportError:
        return ()
    return (httpx.HTTPError,)
