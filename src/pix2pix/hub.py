"""Checkpoints on the Hugging Face Hub: `hf:OWNER/NAME[@REVISION]` wherever a checkpoint
folder is accepted (`pix2pix.load("hf:...")`, `--checkpoint hf:...`).

The folder is downloaded once into the Hub's own cache (`HF_HUB_CACHE`, by default
~/.cache/huggingface/hub) and reused from there; with `HF_HUB_OFFLINE=1` only the cache
is read. Only the files a checkpoint needs are fetched: config.json, the safetensors
weights and the model card, never a pickle. Needs the `hub` extra (huggingface_hub).
"""

from __future__ import annotations

from pathlib import Path

from pix2pix._version import __version__
from pix2pix.errors import UserError

PREFIX = "hf:"
FILES = ["config.json", "*.safetensors", "README.md"]
# what `pix2pix push` sends (its --help; `pix2pix.interop.push` does it)
SENT = (
    "config.json (local paths, i.e. the data and validation folders, --init-from and an "
    "import's source files, as their base names), the safetensors weights (generator, "
    "its EMA average, discriminator) and the model card README.md; never "
    "training_state.pt nor any other file"
)


def is_hub_ref(path: str | Path) -> bool:
    return str(path).startswith(PREFIX)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'hf:OWNER/NAME[@REVISION]' -> (repo id, revision or None)."""
    body = str(ref)[len(PREFIX) :]
    repo, _, revision = body.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UserError(f"{ref}: not a Hub model id; write hf:OWNER/NAME (or hf:OWNER/NAME@REV)")
    return repo, revision or None


def download(ref: str) -> Path:
    """The local folder of the Hub checkpoint `ref` (downloaded, or from the cache)."""
    repo, revision = parse_ref(ref)
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ImportError:
        raise UserError(
            f"{ref}: loading from the Hugging Face Hub needs huggingface_hub; install it "
            "with: pip install 'pix2pix[hub]'"
        ) from None
    try:
        folder = huggingface_hub.snapshot_download(
            repo,
            revision=revision,
            allow_patterns=FILES,
            library_name="pix2pix",
            library_version=__version__,
        )
    except errors.RepositoryNotFoundError:
        raise UserError(
            f"{ref}: no such model on the Hub (or it is private: set HF_TOKEN)"
        ) from None
    except errors.RevisionNotFoundError:
        raise UserError(f"{ref}: the model has no revision {revision!r}") from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{ref}: not in the local Hub cache and the Hub could not be reached ({reason}); "
            "connect, or unset HF_HUB_OFFLINE"
        ) from None
    return Path(folder)
