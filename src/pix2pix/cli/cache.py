"""`pix2pix cache list|clear`: the compiled generators kept on disk (translate.aotcache).

Registered by `pix2pix.cli`; the library functions are `aotcache.entries` and `clear`.
"""

from __future__ import annotations

import argparse
import time

from pix2pix.cli.flags import Subparsers


def add_cache(sub: Subparsers) -> None:
    p = sub.add_parser(
        "cache",
        help="list or clear the compiled generators (and ONNX files) kept on disk",
        description="Translation on the CPU keeps the generator compiled ahead of time per "
        "model, input size, mode and machine in $PIX2PIX_CACHE/aot (default "
        "~/.cache/pix2pix/aot), at most $PIX2PIX_CACHE_MAX (default 2G; the least "
        "recently used packages go first), and the ONNX files of translate --backend "
        "onnxruntime beside them. list: each package, its size and last use; "
        "clear: delete them (only pix2pix's packages, never other files).",
    )
    p.add_argument("action", choices=("list", "clear"), help="list or clear")
    p.set_defaults(func=_cache)


def _cache(args: argparse.Namespace) -> None:
    from pix2pix.translate import aotcache

    folder = aotcache.cache_dir()
    if args.action == "clear":
        count, freed = aotcache.clear(folder)
        print(f"removed {count} file(s), {freed / 2**20:.1f} MB, from {folder}")
        return
    listed = aotcache.entries(folder)
    for e in listed:
        what = e.info.get("what", {})
        shape = "x".join(map(str, what.get("input", ["?"])[0])) if what else "?"
        net = what.get("net", {}).get("generator", "?") if what else "(older version)"
        mode = what["input"][3] if what else "?"
        if "backend" in what:  # an ONNX file of translate --backend onnxruntime
            int8 = ", int8" if what.get("quantize") == "int8" else ""
            mode += f" ({what['backend'].split()[0]}{int8})"
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        print(f"{e.path.name}  {e.size / 2**20:8.1f} MB  last used {used}  {net} {shape} {mode}")
    total = sum(e.size for e in listed)
    print(
        f"{len(listed)} package(s), {total / 2**20:.1f} MB of "
        f"{aotcache.cache_max() / 2**20:.0f} MB (PIX2PIX_CACHE_MAX) in {folder}"
    )
