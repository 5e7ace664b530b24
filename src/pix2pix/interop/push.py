"""`pix2pix push DIR OWNER/NAME`: a checkpoint folder to the Hugging Face Hub.

What is uploaded is what `hf:OWNER/NAME` loads: config.json, the safetensors weights and
the model card (README.md, whose front matter tags it as a pix2pix image-to-image
model); never the training state (a pickle of optimiser tensors) nor anything else in
the folder. The repository is created if needed (`--private` for a private one); the
token is the Hub library's own (HF_TOKEN, or `huggingface-cli login`).
"""

from __future__ import annotations

from pathlib import Path

from pix2pix.checkpoint import find_checkpoint
from pix2pix.errors import UserError
from pix2pix.hub import FILES, parse_ref


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
    url = api.create_repo(repo, private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo, folder_path=str(ckpt), allow_patterns=FILES, revision=revision,
        commit_message=f"pix2pix checkpoint {ckpt.name}",
    )  # fmt: skip
    return str(url)
