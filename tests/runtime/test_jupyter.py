"""The Python API where users work: pictures that display themselves in Jupyter, progress in a
notebook, on a terminal and in a log, the example notebook stored clean (runtime environment;
the notebook itself runs against the installed wheel in tests/package)."""

import base64
import io
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ortviz.errors import UsageError
from ortviz.pictures import Picture, Pictures
from ortviz.run import progress
from ortviz.techniques.spec import ParamError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
QUICK = dict(iterations=3, param="pixel", transforms="light", seed=0)


@pytest.fixture(scope="module")
def flamingo(model):
    return model.class_visualization("flamingo", progress=False, **QUICK)


def test_a_picture_is_its_png_in_a_notebook(flamingo):
    png = flamingo._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    back = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert np.array_equal(back, flamingo.image)  # lossless: the picture itself
    pil = flamingo.to_pil()
    assert pil.size == (flamingo.image.shape[1], flamingo.image.shape[0]) and pil.mode == "RGB"
    assert np.array_equal(np.asarray(pil), flamingo.image)


def test_the_html_caption_says_technique_target_status_and_top1(flamingo):
    page = flamingo._repr_html_()
    top = flamingo.top5[0]
    caption = re.search(r"<figcaption[^>]*>(.*)</figcaption>", page).group(1)
    assert "class-visualization" in caption and "130 flamingo" in caption
    assert "complete" in caption
    assert f"model sees {top['label'].split(',')[0]} {top['probability']:.2f}" in caption
    img = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(img) == flamingo._repr_png_()
    assert "130 flamingo" in repr(flamingo) and "224x224" in repr(flamingo)


def test_a_caption_is_escaped_and_names_the_layer_without_a_target(model):
    pic = model.deepdream(iterations=1, octaves=1, max_side=64, progress=False)
    assert "deepdream at _blocks.10" in pic.caption() and "complete" in pic.caption()
    seen = model.feature_visualization("_blocks.10:5", iterations=1, progress=False).caption()
    assert seen.startswith("feature-visualization of _blocks.10:5 · complete · model sees ")
    pic.meta["layer"] = pic.meta["params"]["objective"] = "<b>"
    assert "&lt;b&gt;" in pic._repr_html_() and "<b>" not in pic._repr_html_()


def test_several_classes_come_back_as_a_grid(model):
    pics = model.class_visualization(["goldfish", "pizza"], progress=False, **QUICK)
    assert isinstance(pics, Pictures) and isinstance(pics, list) and len(pics) == 2
    assert all(isinstance(p, Picture) for p in pics)
    grid = pics._repr_html_()
    assert grid.count("<img ") == 2 and grid.count("<figcaption") == 2
    assert "goldfish" in grid and "pizza" in grid and "flex-wrap" in grid
    assert repr(pics).startswith("<Pictures: 2>")
    sheet = np.asarray(Image.open(io.BytesIO(pics._repr_png_())).convert("RGB"))
    assert sheet.shape == (224, 2 * 224 + 4, 3)  # side by side, a white gap between
    assert np.array_equal(sheet[:, :224], pics[0].image)
    assert np.array_equal(sheet[:, 228:], pics[1].image) and (sheet[:, 224:228] == 255).all()
    assert pics.grid(columns=1).size == (224, 2 * 224 + 4)
    with pytest.raises(ValueError, match="no pictures"):
        Pictures().grid()


def test_show_outside_a_notebook_opens_the_image_viewer(flamingo, monkeypatch):
    shown = []
    monkeypatch.setattr(Image.Image, "show", lambda im, *a, **k: shown.append(im.size))
    flamingo.show()
    Pictures([flamingo, flamingo]).show()
    assert shown == [(224, 224)] * 3


def test_show_in_a_notebook_displays_inline(flamingo, monkeypatch):
    displayed = []
    display = types.ModuleType("IPython.display")
    display.display = displayed.append
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(Image.Image, "show", lambda im: pytest.fail("opened a viewer"))
    flamingo.show()
    assert displayed == [flamingo]


def test_pictures_save_each_with_its_sidecar(model, tmp_path):
    pics = model.class_visualization([1, 2], progress=False, **QUICK)
    written = pics.save(tmp_path / "c.png")
    assert (tmp_path / "c-0.png").exists() and (tmp_path / "c-1.png.json").exists()
    assert json.loads((tmp_path / "c-1.png.json").read_text())["target"]["class"] == 2
    assert len(written) == 4


# -- progress ------------------------------------------------------------------------------

def test_without_a_terminal_progress_is_periodic_plain_lines(model, monkeypatch, capsys):
    monkeypatch.setenv("ORTVIZ_PROGRESS_SECONDS", "0")  # a line every iteration
    model.class_visualization("flamingo", **QUICK)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.startswith("class-visualization: ")]
    assert len(lines) == 4, err  # one per iteration and the last word
    for k, line in enumerate(lines[:3], 1):
        assert re.fullmatch(rf"class-visualization: {k}/3 iterations, objective -?[\d.e+-]+, "
                            r"[\d.]+ it/s, about \d+s left", line), line
    assert re.fullmatch(r"class-visualization: 3/3 iterations, .* it/s, [\d.]+ s", lines[3])
    assert "\r" not in err and "\x1b" not in err  # no terminal control in a log


def test_progress_false_is_silent_and_a_short_run_is_quiet_by_default(model, monkeypatch, capsys):
    monkeypatch.setenv("ORTVIZ_PROGRESS_SECONDS", "0")
    model.class_visualization("flamingo", progress=False, **QUICK)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("ORTVIZ_PROGRESS_SECONDS")
    model.class_visualization("flamingo", **QUICK)  # under the 5 s between lines
    assert capsys.readouterr().err == ""


def test_plain_lines_come_every_few_seconds():
    now = [0.0]
    out = io.StringIO()
    lines = progress.Lines("dream", 80, out, every=5.0, clock=lambda: now[0])
    for t in range(1, 81):
        now[0] = t * 0.25  # 4 it/s: 20 s in all
        lines.update(t, 1.5)
    lines.close()
    got = out.getvalue().splitlines()
    assert [l.split(",")[0] for l in got] == ["dream: 20/80 iterations", "dream: 40/80 iterations",
                                              "dream: 60/80 iterations", "dream: 80/80 iterations",
                                              "dream: 80/80 iterations"]
    assert got[0] == "dream: 20/80 iterations, objective 1.5, 4.0 it/s, about 15s left"
    assert got[-1] == "dream: 80/80 iterations, objective 1.5, 4.0 it/s, 20.0 s"


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_progress_interval_is_a_one_line_error(model, monkeypatch, value, tmp_path):
    monkeypatch.setenv("ORTVIZ_PROGRESS_SECONDS", value)
    with pytest.raises(UsageError, match=r"^ORTVIZ_PROGRESS_SECONDS must be a number of seconds"):
        model.class_visualization("flamingo", **QUICK)
    model.class_visualization("flamingo", progress=False, **QUICK)  # not read when off
    r = subprocess.run([sys.executable, "-m", "ortviz", "class-viz", "--iterations", "1", "-o",
                        "never.png"], capture_output=True, text=True,
                       env={**os.environ, "ORTVIZ_PROGRESS_SECONDS": value}, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ORTVIZ_PROGRESS_SECONDS")
    assert len(r.stderr.splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_the_cli_writes_progress_lines_to_a_log(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ortviz", "dream", "--iterations", "2",
                        "--octaves", "2", "--max-side", "96", "-o", tmp_path / "d.png"],
                       capture_output=True, text=True,
                       env={**os.environ, "ORTVIZ_PROGRESS_SECONDS": "0"})
    assert r.returncode == 0, r.stderr
    steps = re.findall(r"^deepdream: (\d+)/4 iterations", r.stderr, re.M)
    assert steps == ["1", "2", "3", "4", "4"], r.stderr


def test_in_a_notebook_progress_is_a_tqdm_bar_where_tqdm_is_installed(model, monkeypatch, capsys):
    bars = []

    class FakeTqdm:  # tqdm.auto's interface as the runner uses it
        def __init__(self, total, desc, unit):
            self.n, self.total, self.desc, self.postfix, self.closed = 0, total, desc, None, False
            bars.append(self)

        def set_postfix(self, refresh=True, **kw):
            self.postfix = kw

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setenv("ORTVIZ_PROGRESS_SECONDS", "0")
    model.class_visualization("flamingo", **QUICK)
    (bar,) = bars
    assert (bar.desc, bar.total, bar.n, bar.closed) == ("class-visualization", 3, 3, True)
    assert float(bar.postfix["objective"]) == pytest.approx(0, abs=1e6)
    assert capsys.readouterr().err == ""  # the bar, not the plain lines
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm not installed: plain lines
    model.class_visualization("flamingo", **QUICK)
    assert "class-visualization: 3/3 iterations" in capsys.readouterr().err


def test_outside_a_kernel_it_is_not_a_notebook():
    assert not progress.in_notebook()


# -- the API's words ---------------------------------------------------------------------------

def test_python_errors_name_the_apis_arguments_not_the_clis_flags(model):
    with pytest.raises(ParamError, match=r"^iterations must be positive$"):
        model.class_visualization("flamingo", iterations=0)
    with pytest.raises(ParamError, match=r"^octaves=2 needs param pixel"):
        model.deepdream(param="fft", octaves=2)
    with pytest.raises(UsageError, match=r"^snapshot_every=1 keeps 2000 frames .* "
                                         r"\(use snapshot_every=2 or more"):
        model.class_visualization("flamingo", iterations=2000, snapshot_every=1)
    with pytest.raises(UsageError, match=r"^target=130 and target flamingo are the same class"):
        model.class_visualization(["flamingo", 130], iterations=1)


# -- the example notebook -------------------------------------------------------------------

def test_there_is_an_example_notebook_and_it_is_stored_without_outputs():
    assert NOTEBOOKS, "examples/ holds no notebook"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        assert nb["nbformat"] == 4
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code, path
        for cell in code:
            assert cell["outputs"] == [] and cell["execution_count"] is None, \
                (path.name, "".join(cell["source"])[:60])
        assert "widgets" not in nb["metadata"], path.name  # no saved widget state either
