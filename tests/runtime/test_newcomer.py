"""The command line as a newcomer meets it (issue 23, item 3): --version and -h, help that
names no file outside the wheel and no Python type, ``ortviz classify``, "did you mean" for a
class name, options the chosen parameterization does not read, sidecars that record the values
used, --max-side as its help says, an aligned layers table (runtime environment)."""

import json
import re

import numpy as np
import pytest
from PIL import Image

import ortviz
from ortviz import __version__
from ortviz.bundle.embedded import default_bundle, sample
from ortviz.bundle.labels import LabelError, find_class
from ortviz.bundle.reader import Bundle
from ortviz.techniques.spec import ParamError

import probes


def invoke(*args):
    return probes.invoke(*args, env={"COLUMNS": "250"})  # wide help: options on one line


def one_error(r) -> str:
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    return lines[0]


@pytest.fixture(scope="module")
def labels():
    return Bundle.open(default_bundle()).labels


def test_version_and_short_help():
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.startswith(f"ortviz {__version__} (onnxruntime ")
    for cmd in ([], ["class-viz"], ["run", "deepdream"], ["export", "onnx"], ["classify"]):
        short, long = invoke(*cmd, "-h"), invoke(*cmd, "--help")
        assert short.exit_code == 0 and short.output == long.output and "Usage: " in short.output


def _all_commands():
    yield []
    for name in ("info", "layers", "labels", "classify", "plugins", "providers", "atlas", "serve",
                 "class-viz", "invert", "dream", "feature-viz", "export", "export torch",
                 "export onnx", "run", "run class-visualization", "run deepdream",
                 "run feature-inversion", "run feature-visualization"):
        yield name.split()


@pytest.mark.parametrize("cmd", list(_all_commands()), ids=lambda c: " ".join(c) or "ortviz")
def test_help_names_no_file_outside_the_wheel_and_no_python_type(cmd):
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.replace("│", " ").split())
    for bad in ("bench/", "README", "<bool>", "list[", "<list"):
        assert bad not in text, (bad, text)


def test_classify_shows_the_top5_of_a_photo(tmp_path):
    r = invoke("classify", sample())
    rows = r.output.splitlines()
    assert r.exit_code == 0 and len(rows) == 5, r.output
    assert re.fullmatch(r"\s*285  0\.\d{3}  Egyptian cat", rows[0]), rows[0]
    got = json.loads(invoke("classify", sample("coffee.png"), "--json").output)
    assert got["top5"][0]["class"] == 967 and len(got["top5"]) == 5  # espresso
    model = ortviz.load(provider="cpu")
    assert got["top5"] == model.classify(sample("coffee.png"))  # the API's answer
    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    for args, expect in ((["nope.png"], "nope.png: no such file"),
                         ([not_image], "not an image file"),
                         ([], "Missing argument 'IMAGE'"),
                         ([sample(), "--provider", "nope"], "unknown execution provider 'nope'"),
                         ([sample(), "--threads", "0"], "--threads")):
        r = invoke("classify", *args)
        assert r.exit_code == 2 and expect in one_error(r), (args, r.output)


def test_a_class_name_that_is_part_of_several_says_did_you_mean_whole_words_first(labels):
    with pytest.raises(LabelError) as e:
        find_class(labels, "cat")
    msg = str(e.value)
    assert msg.startswith("class name 'cat' is ambiguous; did you mean 281 (tabby, tabby cat), "
                          "282 (tiger cat), 283 (Persian cat), 284 (Siamese cat, Siamese), "
                          "285 (Egyptian cat), 383 (Madagascar cat"), msg
    assert "bullfrog" not in msg and "cockatoo" not in msg  # catesbeiana, Cacatua: parts only
    assert "more: ortviz labels --search 'cat'" in msg
    assert find_class(labels, "shuttle") == 812       # a whole word of one class
    assert find_class(labels, "space shuttle") == 812
    r = invoke("class-viz", "--class", "cat", "--iterations", 1)
    assert r.exit_code == 2 and "did you mean 281 (tabby, tabby cat)" in one_error(r)


def test_two_classes_of_one_name_say_why_their_neighbours_are_shown(labels):
    with pytest.raises(LabelError, match=r"134 \(crane\) next to bittern and limpkin; 517 .*"
                                         r"told apart by their neighbours in the label order"):
        find_class(labels, "crane")
    assert "neighbours in the label order" in invoke("labels", "--help").output


def test_dream_with_a_spectrum_needs_no_octaves_flag(tmp_path):
    out = tmp_path / "d.png"
    r = invoke("dream", "--param", "fft", "--iterations", 1, "--max-side", 64, "-o", out)
    assert r.exit_code == 0, r.output
    assert json.loads(out.with_name("d.png.json").read_text())["params"]["octaves"] == 1
    r = invoke("dream", "--param", "fft", "--octaves", 4, "--iterations", 1, "-o", out)
    assert r.exit_code == 2 and "--octaves 4 needs --param pixel" in one_error(r)
    pic = ortviz.load(provider="cpu").deepdream(param="maco", iterations=1, max_side=64,
                                               progress=False)
    assert pic.status == "complete" and pic.meta["params"]["octaves"] == 1
    assert "1 unless given" in " ".join(invoke("dream", "--help").output.split())


@pytest.mark.parametrize("args, flag, on", [
    (["class-viz", "--l2", "0.01"], "--l2", "--param pixel"),
    (["class-viz", "--l2", "0.002"], "--l2", "--param pixel"),      # given, even at its default
    (["class-viz", "--blur-every", "3"], "--blur-every", "--param pixel"),
    (["class-viz", "--jitter", "5"], "--jitter", "--transforms light"),
    (["feature-viz", "--blur-sigma", "1"], "--blur-sigma", "--param pixel"),
    (["feature-viz", "--param", "pixel", "--decay", "2"], "--decay", "--param fft"),
    (["invert", "--param", "fft", "--blur-every", "2"], "--blur-every", "--param pixel"),
    (["dream", "--param", "fft", "--octave-scale", "1.2"], "--octave-scale", "--param pixel"),
])
def test_an_option_the_parameterization_does_not_read_is_refused(tmp_path, args, flag, on):
    r = invoke(*args, "--iterations", 1, "-o", tmp_path / "x.png")
    assert r.exit_code == 2, r.output
    assert one_error(r).startswith(f"error: {flag} applies to {on} only; this run's --"), r.output
    assert list(tmp_path.iterdir()) == []


def test_pixel_options_with_pixels_run_and_the_api_says_it_in_its_words(tmp_path):
    r = invoke("class-viz", "--param", "pixel", "--transforms", "light", "--l2", "0.01",
               "--jitter", 4, "--iterations", 1, "-o", tmp_path / "p.png")
    assert r.exit_code == 0, r.output
    model = ortviz.load(provider="cpu")
    with pytest.raises(ParamError, match=r"^l2 applies to param pixel only; this run's param is natural"):
        model.class_visualization(130, iterations=1, l2=0.01)


def test_sidecars_record_the_values_the_run_used(tmp_path):
    def side(*args):
        out = tmp_path / f"s{len(list(tmp_path.iterdir()))}.png"
        r = invoke(*args, "--iterations", 1, "-o", out)
        assert r.exit_code == 0, r.output
        return json.loads(out.with_name(out.name + ".json").read_text())["params"]

    assert side("class-viz")["lr"] == 0.05                           # Adam on the spectrum
    assert side("class-viz", "--param", "pixel", "--transforms", "light")["lr"] == 0.1
    assert side("invert")["lr"] == 0.05
    assert side("feature-viz", "--param", "maco")["lr"] == 0.05
    dream = side("dream", "--max-side", 64, "--octaves", 1)
    assert dream["objective"] == "_blocks.10" and dream["octaves"] == 1
    assert side("dream", "--max-side", 64, "--layer", "late")["objective"] == "_blocks.15"


def test_a_recorded_dream_objective_gives_the_same_picture(tmp_path):
    model = ortviz.load(provider="cpu")
    kw = dict(iterations=2, octaves=1, max_side=96, seed=3, progress=False)
    a = model.deepdream(**kw)
    b = model.deepdream(objective=a.meta["params"]["objective"], **kw)
    assert a.meta["params"]["objective"] == "_blocks.10"
    assert np.array_equal(a.image, b.image)


def test_max_side_is_a_limit_as_its_help_says(tmp_path):
    photo = tmp_path / "small.png"
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(photo)
    r = invoke("dream", "--image", photo, "--max-side", 1024, "--iterations", 1, "--octaves", 1,
               "-o", tmp_path / "d.png")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "d.png").size == (300, 200)         # not enlarged
    r = invoke("dream", "--image", photo, "--max-side", 150, "--iterations", 1, "--octaves", 1,
               "-o", tmp_path / "e.png")
    assert Image.open(tmp_path / "e.png").size == (150, 100)         # shrunk to it
    text = " ".join(invoke("dream", "--help").output.replace("│", " ").split())
    assert "a larger photo is shrunk to it, a smaller one keeps its own size" in text


def test_the_layers_table_is_aligned():
    r = invoke("layers")
    lines = r.output.splitlines()
    assert r.exit_code == 0 and len(lines) > 10
    header = lines[0]
    names = ["layer", "channels", "positions", "shape", "op", "tensor"]
    starts = [header.index(n) for n in names]
    ends = [s + len(n) for s, n in zip(starts, names)]
    for line in lines[1:]:
        cells = list(re.finditer(r"\S+(?: \S+)*", line))  # one space inside a cell: (1, 32, ...)
        assert len(cells) == 6, line
        for k, cell in enumerate(cells):
            if k in (1, 2):  # numbers: right-aligned under their heading
                assert cell.end() == ends[k], (names[k], line)
            else:
                assert cell.start() == starts[k], (names[k], line)
