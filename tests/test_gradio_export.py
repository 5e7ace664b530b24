"""`pix2pix export --format gradio`: the app folder, its Space front matter, and the app
answering a request.

Gradio itself is not installed in the test environment (its releases pin Pillow below
the one this package is tested with), so the app runs against a stand-in `gradio`
module that records the Interface it is given; calling that Interface's function is
what Gradio does for a request.
"""

from __future__ import annotations

import runpy
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import error_line, run_cli
from pix2pix import load
from test_serve import make_model


class FakeGradio(types.ModuleType):
    """The parts of gradio the app uses: components record their arguments, Interface
    keeps its function, Error is an exception."""

    def __init__(self) -> None:
        super().__init__("gradio")
        self.interfaces: list[dict[str, Any]] = []
        self.Error = type("Error", (Exception,), {})
        for name in ("Image", "Number"):
            setattr(self, name, lambda *a, _n=name, **k: (_n, a, k))
        fake = self

        class Interface:
            def __init__(self, **kwargs: Any) -> None:
                fake.interfaces.append(kwargs)

            def launch(self) -> None:
                raise AssertionError("the app must not launch on import")

        self.Interface = Interface


@pytest.fixture
def fake_gradio(monkeypatch: pytest.MonkeyPatch) -> FakeGradio:
    fake = FakeGradio()
    monkeypatch.setitem(sys.modules, "gradio", fake)
    return fake


def test_gradio_app_answers_a_request(
    tmp_path: Path, fake_gradio: FakeGradio, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model(tmp_path / "ck")
    space = tmp_path / "space"
    code, out, _ = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format",
                           "gradio", "--out", space)  # fmt: skip
    assert code == 0 and "app.py" in out
    assert sorted(p.name for p in space.iterdir()) == [
        "README.md", "app.py", "model", "requirements.txt"
    ]  # fmt: skip
    front = space.joinpath("README.md").read_text().split("---")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py"
    assert fields["sdk_version"][0].isdigit()
    assert "gradio==" in space.joinpath("requirements.txt").read_text()

    namespace = runpy.run_path(str(space / "app.py"))  # not __main__: no launch
    (interface,) = fake_gradio.interfaces
    assert [c[0] for c in interface["inputs"]] == ["Image", "Number"]  # no code: no sample
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    answer = interface["fn"](image, 3)
    want = load(tmp_path / "ck", "cpu").translate(image, seed=3)
    assert answer.size == (80, 48)
    assert np.array_equal(np.asarray(answer), np.asarray(want))
    with pytest.raises(fake_gradio.Error, match="give an input image"):
        namespace["translate"](None)

    # a second export over it needs --overwrite; a folder of other files is refused
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format",
                           "gradio", "--out", space)  # fmt: skip
    assert code == 2 and "--overwrite" in error_line(err)
    other = tmp_path / "other"
    other.mkdir()
    (other / "app.py").write_text("mine")
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format",
                           "gradio", "--out", other)  # fmt: skip
    assert code == 2 and "does not hold a Gradio export" in error_line(err)
    assert (other / "app.py").read_text() == "mine"
