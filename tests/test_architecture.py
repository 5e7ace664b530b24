"""The package's shape: no import cycles, the layers of docs/ARCHITECTURE.md, small parts.

Imports are read from the source (every `import` and `from ... import`, at module level,
inside functions and under TYPE_CHECKING alike). Importing `a.b.c` runs `a/__init__` and
`a/b/__init__` first, so a module also depends on its packages' `__init__`.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pix2pix"

# Layers, lowest first: a module may import its own layer and the ones below, never above.
LAYERS: list[set[str]] = [
    {"_version", "errors"},
    {"fileio", "lock", "runtime", "nets", "palette", "hub"},
    {"config"},
    {"data", "losses", "checkpoint", "html", "modelcard"},
    {"methods"},
    {"translate", "export", "segmentation", "interop"},
    {"evaluation"},
    {"training"},
    {"demo", "serve"},
    {"cli", "__main__", "__init__"},
]


def module_name(path: Path) -> str:
    parts = ("pix2pix", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The pix2pix modules `name` imports, with the packages whose __init__ that runs."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("pix2pix"):
                found.add(target)
    # importing a.b.c runs a.b's __init__ (and a's, which is the root: left out), unless
    # a.b is a package this module is part of (it is being initialised already)
    for target in list(found):
        parts = target.split(".")
        found |= {".".join(parts[:i]) for i in range(2, len(parts))
                  if not name.startswith(".".join(parts[:i]) + ".")}  # fmt: skip
    found = {t for t in found if not name.startswith(t + ".")}  # its own packages
    found.discard(name)
    return found & MODULES.keys() - {"pix2pix"}


GRAPH = {name: imports_of(name) for name in MODULES}


def find_cycle() -> list[str] | None:
    """One import cycle as a path of module names, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(GRAPH[v]):
            if state.get(w) == 1:
                return [*path[path.index(w) :], w]
            if w not in state and (cycle := visit(w)):
                return cycle
        path.pop()
        state[v] = 2
        return None

    for v in sorted(GRAPH):
        if v not in state and (cycle := visit(v)):
            return cycle
    return None


def layer_of(name: str) -> int:
    top = name.split(".")[1] if "." in name else "__init__"
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def test_no_import_cycles() -> None:
    assert find_cycle() is None, " -> ".join(find_cycle() or [])


def test_the_cycle_finder_finds_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    # the test above can fail: add the import config -> nets -> config and it does
    graph = {**GRAPH, "pix2pix.nets": GRAPH["pix2pix.nets"] | {"pix2pix.config"}}
    monkeypatch.setitem(globals(), "GRAPH", graph)
    assert find_cycle() is not None


def test_every_top_level_part_has_a_layer() -> None:
    tops = {n.split(".")[1] for n in MODULES if "." in n}
    placed = set().union(*LAYERS)
    assert tops <= placed, tops - placed


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_layers(name: str) -> None:
    if name == "pix2pix":
        return  # the package __init__ re-exports the public API from every layer
    upward = sorted(t for t in GRAPH[name] if layer_of(t) > layer_of(name))
    assert not upward, f"{name} imports {upward} from a higher layer"


def test_at_most_twelve_modules_at_the_top() -> None:
    top = [p.stem for p in SRC.glob("*.py") if not p.stem.startswith("_")]
    assert len(top) <= 12, sorted(top)


def test_no_long_functions_or_modules() -> None:
    long_modules = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert max(long_modules.values()) <= 360, max(long_modules.items(), key=lambda kv: kv[1])
    benchmarks = {f"benchmarks.{p.stem}": p for p in (SRC.parents[1] / "benchmarks").glob("*.py")}
    for name, path in {**MODULES, **benchmarks}.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert length <= 80, f"{name}.{node.name}: {length} lines"


def test_the_readme_python_api_imports() -> None:
    import pix2pix
    import pix2pix.evaluate  # the 0.1 paths
    import pix2pix.fid
    import pix2pix.metrics
    from pix2pix import DataConfig, ModelConfig, RunConfig, TrainConfig, fit  # noqa: F401
    from pix2pix.evaluation import evaluate, fid, metrics

    assert pix2pix.evaluate is evaluate and pix2pix.metrics is metrics and pix2pix.fid is fid
    assert callable(pix2pix.evaluate.evaluate) and callable(pix2pix.load)


def test_the_public_load_takes_every_option_of_pix2pix_load() -> None:
    import inspect

    import pix2pix

    # one signature, the same defaults: pix2pix.load(path, precision="fp32", compile="off")
    assert inspect.signature(pix2pix.load) == inspect.signature(pix2pix.Pix2Pix.load)
    assert "precision" in inspect.signature(pix2pix.load).parameters


def test_at_most_twelve_modules_in_every_package() -> None:
    for package in [SRC, *(p for p in SRC.rglob("*") if (p / "__init__.py").exists())]:
        modules = [p.stem for p in package.glob("*.py") if not p.stem.startswith("_")]
        assert len(modules) <= 12, (package.relative_to(SRC.parent), sorted(modules))


# ------------------------------------------------------------ the reading path


def config_walk(tmp_path: Path) -> tuple[list[str], list[str]]:
    """Run one training step of the paper recipe, tracing pix2pix's Python calls.

    Returns (the walk: the modules of the functions a RunConfig (or a section of it, or
    an object holding it as `.config`) is handed to, in the order each is first called,
    from `fit` to the first optimiser step, runs of one module collapsed; the modules
    every call from `Trainer.step` to that optimiser step runs in)."""
    import os
    import sys

    from conftest import tiny_config, write_aligned
    from pix2pix import fit
    from pix2pix.config import SECTIONS, RunConfig

    kinds = (RunConfig, *SECTIONS.values())
    walk: list[str] = []
    step: list[str] = []
    seen: set[object] = set()
    state = {"done": False, "in_step": False}

    def profile(frame, event, arg) -> None:
        code = frame.f_code
        if state["done"] or event != "call":
            return
        if code.co_filename.endswith(os.path.join("torch", "optim", "adam.py")):
            state["done"] = code.co_name == "step"
            return
        if not code.co_filename.startswith(str(SRC)):
            return
        name = module_name(Path(code.co_filename))
        if name == "pix2pix.training.trainer" and code.co_name == "step":
            state["in_step"] = True
        if state["in_step"] and name not in step:
            step.append(name)
        args = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        values = [frame.f_locals.get(a) for a in args]
        values += [getattr(v, "config", None) for v in values]
        if code in seen or not any(isinstance(v, kinds) for v in values):
            return
        seen.add(code)
        if not walk or walk[-1] != name:
            walk.append(name)

    cfg = tiny_config(write_aligned(tmp_path / "data"), train={"max_steps": 1})
    sys.setprofile(profile)
    try:
        fit(cfg, tmp_path / "run")
    finally:
        sys.setprofile(None)
    assert state["done"], "the walk never reached an optimiser step"
    return walk, step


def test_one_training_step_reads_in_few_files_and_few_climbs(tmp_path: Path) -> None:
    walk, step = config_walk(tmp_path)
    climbs = [(a, b) for a, b in itertools.pairwise(walk) if layer_of(b) > layer_of(a)]
    assert len(climbs) <= 10, climbs
    entries = {m: walk.count(m) for m in walk}
    assert max(entries.values()) <= 3, entries  # entered, then re-entered at most twice
    assert len(step) <= 8, step  # Trainer.step to the optimiser: the files a reader opens
    assert step[:2] == ["pix2pix.training.trainer", "pix2pix.methods.pix2pix"]


def test_docs_hold_no_machine_specific_absolute_paths() -> None:
    root = Path(__file__).parent.parent
    pattern = re.compile(r"(?<![\w.])/(?:work|root|home|Users|tmp)/[\w.-]+")
    files = [root / "README.md", *sorted((root / "docs").glob("*.md")),
             *sorted((root / "docs").glob("*.json"))]  # fmt: skip
    found = [f"{f.name}: {m.group(0)}" for f in files for m in pattern.finditer(f.read_text())]
    assert not found, found[:5]
