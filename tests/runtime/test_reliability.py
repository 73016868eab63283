"""Reliability and security on stock onnxruntime (docs/reliability.md).

Untrusted bundles (external data that leaves the bundle, manifests of the wrong shape), and the
helpers the other reliability files share. Ctrl-C, NaN/Inf and exceptions in a technique:
``test_interrupts.py``; readers while a bundle is replaced: ``test_bundle_swaps.py``; the fuzz:
``test_fuzz_bundles.py`` and ``test_fuzz_more.py``; output sets, signals, plugins, options and
odd files: ``test_outputs.py``, ``test_signals.py``, ``test_plugin_safety.py``, ``test_options.py``.
"""

import json
import shutil
from pathlib import Path

import onnx
import pytest

from ortviz.bundle.reader import Bundle, BundleError, sha256

from probes import invoke, one_error_line
from support import ARTIFACTS

SMALL = ARTIFACTS / "small_resnet_torchscript"
GRAD = "grad.features__layer1.onnx"


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name]

# -- untrusted bundles -------------------------------------------------------------------------

def small_copy(tmp_path, name="b") -> Path:
    assert SMALL.exists(), f"{SMALL} missing: run the export stage first (make test)"
    dst = tmp_path / name
    shutil.copytree(SMALL, dst)
    return dst


def edit_manifest(b: Path, change) -> None:
    m = json.loads((b / "manifest.json").read_text())
    res = change(m)  # edits in place, or returns ("replace", new manifest)
    if isinstance(res, tuple) and res[:1] == ("replace",):
        m = res[1]
    (b / "manifest.json").write_text(json.dumps(m))


def rehash(b: Path, rel: str) -> None:
    """Make the manifest agree with a changed file, as an attacker would."""
    edit_manifest(b, lambda m: m["files"].__setitem__(rel, sha256(b / rel)))


def point_external_data(b: Path, rel: str, location: str, offset: int | None = None) -> str:
    """Point the first external initializer of ``rel`` at ``location``; the hash is fixed so only
    the external-data check can refuse it. Returns the tensor's name."""
    model = onnx.load(str(b / rel), load_external_data=False)
    tensor = next(t for t in model.graph.initializer
                  if t.data_location == onnx.TensorProto.EXTERNAL)
    for entry in tensor.external_data:
        if entry.key == "location":
            entry.value = location
        if entry.key == "offset" and offset is not None:
            entry.value = str(offset)
    (b / rel).write_bytes(model.SerializeToString())
    rehash(b, rel)
    return tensor.name


@pytest.fixture
def no_onnxruntime_loads(monkeypatch):
    """Fail the test if onnxruntime is asked to load any model."""
    import onnxruntime

    def refuse(*a, **k):
        raise AssertionError(f"onnxruntime loaded {a[:1]} before the bundle was refused")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)


@pytest.mark.parametrize("case", ["absolute", "dotdot", "unlisted", "dot_slash", "past_end",
                                  "attribute"])
def test_external_data_outside_the_bundle_is_refused_before_loading(tmp_path, case,
                                                                    no_onnxruntime_loads):
    b = small_copy(tmp_path)
    outside = tmp_path / "outside.bin"
    shutil.copy(b / "weights.bin", outside)  # the right bytes, so only the location is wrong
    if case == "absolute":
        loc, expect = str(outside), "outside the bundle (absolute path or ..)"
    elif case == "dotdot":
        loc, expect = "../outside.bin", "outside the bundle (absolute path or ..)"
    elif case == "unlisted":
        loc, expect = "other.bin", "a file the manifest does not list"
    elif case == "dot_slash":
        loc, expect = "./weights.bin", "a file the manifest does not list"
    elif case == "past_end":
        loc, expect = "weights.bin", "past the end of the"
    if case == "attribute":  # a Constant node's tensor, not an initializer
        model = onnx.load(str(b / GRAD), load_external_data=False)
        value = onnx.TensorProto(name="c", data_type=onnx.TensorProto.FLOAT, dims=[4],
                                 data_location=onnx.TensorProto.EXTERNAL)
        value.external_data.add(key="location", value=str(outside))
        value.external_data.add(key="length", value="16")
        model.graph.node.append(onnx.helper.make_node("Constant", [], ["c_out"], value=value))
        (b / GRAD).write_bytes(model.SerializeToString())
        rehash(b, GRAD)
        expect, name = "outside the bundle", "c"
    else:
        name = point_external_data(b, GRAD, loc, offset=10**9 if case == "past_end" else None)
    with pytest.raises(BundleError) as err:
        Bundle.open(b)
    msg = str(err.value)
    assert expect in msg and GRAD in msg and repr(name[:60]) in msg, msg
    assert "\n" not in msg
    out = tmp_path / "o.png"
    r = invoke("dream", "--model", b, "--layer", "layer1", "--iterations", 1, "--octaves", 1,
               "-o", out)
    assert r.exit_code == 2 and GRAD in one_error_line(r) and not out.exists()


def test_symlinks_in_a_bundle_are_refused(tmp_path, no_onnxruntime_loads):
    # weights.bin replaced by a link to an outside copy (with the right bytes and hash)
    b = small_copy(tmp_path)
    outside = tmp_path / "outside.bin"
    shutil.move(b / "weights.bin", outside)
    (b / "weights.bin").symlink_to(outside)
    with pytest.raises(BundleError, match="'weights.bin' is a link or leaves the bundle"):
        Bundle.open(b)
    # a graph whose external data names a link inside the bundle that the manifest lists
    b = small_copy(tmp_path, "b2")
    (b / "w2.bin").symlink_to(b / "weights.bin")
    point_external_data(b, GRAD, "w2.bin")
    edit_manifest(b, lambda m: m["files"].__setitem__("w2.bin", sha256(b / "weights.bin")))
    with pytest.raises(BundleError, match="'w2.bin' is a link"):
        Bundle.open(b)
    # the location check itself, for a link the manifest does not cover
    b = small_copy(tmp_path, "b3")
    bundle = Bundle.open(b)
    (b / "w3.bin").symlink_to(outside)
    tensor = onnx.TensorProto(name="t", data_location=onnx.TensorProto.EXTERNAL)
    tensor.external_data.add(key="location", value="w3.bin")
    with pytest.raises(BundleError, match="which is a symlink"):
        bundle._check_external(GRAD, tensor, {})


@pytest.fixture
def nested():
    """``make(top, depth)``: ``top/d/d/.../d``, ``depth`` folders deep, made one by one
    (os.makedirs recurses). Removed again at teardown, deepest first: left behind, it breaks
    every later pytest session on the machine, whose clean-up of old temporary folders
    (shutil.rmtree, recursive) raises RecursionError past about 1,000 levels."""
    made = []

    def make(top: Path, depth: int) -> Path:
        p = top
        top.mkdir()
        made.append((top, depth))
        for _ in range(depth):
            p = p / "d"
            p.mkdir()
        return p

    yield make
    for top, depth in made:
        for k in range(depth, -1, -1):
            folder = top.joinpath(*["d"] * k)
            for f in folder.iterdir():
                if not f.is_dir():
                    f.unlink()
            folder.rmdir()


def test_a_deeply_nested_empty_folder_in_a_bundle_is_ignored(tmp_path, no_onnxruntime_loads, nested):
    """Empty folders hold no file the manifest could miss, at any depth: walked without
    recursion (Path.rglob raised RecursionError at 1,200 levels)."""
    b = small_copy(tmp_path)
    nested(b / "deep", 1200)
    r = invoke("info", b)
    assert r.exit_code == 0 and "graphs" in r.output, r.output
    assert Bundle.open(b).name


def test_a_file_at_the_bottom_of_a_deeply_nested_folder_is_refused(tmp_path, no_onnxruntime_loads,
                                                                  nested):
    b = small_copy(tmp_path)
    (nested(b / "deep", 1200) / "x.onnx").write_bytes(b"x")
    r = invoke("info", b)
    line = one_error_line(r)
    assert r.exit_code == 2 and "bundle holds a file its manifest does not list: deep/d/d/" in line \
        and line.endswith("d/d/x.onnx") and len(line) < 300, line


def test_the_deep_folders_are_gone_after_those_tests(tmp_path_factory):
    """pytest must be able to remove this session's temporary folders in a later one."""
    base = tmp_path_factory.getbasetemp()
    left = [p for p in base.glob("*/*/deep") if (p / "d").is_dir()]
    assert not left, f"a 1,200-level folder was left: {left[0]}"

MANIFEST_CASES = {
    "graphs not a list": (lambda m: m.__setitem__("graphs", {}), "field 'graphs' must be a list"),
    "labels missing": (lambda m: m.pop("labels"), "has no 'labels' field"),
    "too few labels": (lambda m: m["labels"].pop(), "9 labels for 10 classes"),
    "label not a string": (lambda m: m["labels"].__setitem__(2, 7), "'labels' must be a list of strings"),
    "shape of strings": (lambda m: m["input"].__setitem__("shape", ["1", "3", "32", "32"]),
                         "'input.shape' must be a list of positive integers"),
    "model not an object": (lambda m: m.__setitem__("model", "x"), "'model' must be an object"),
    "no model name": (lambda m: m["model"].pop("name"), "has no 'model.name' field"),
    "hash not hex": (lambda m: m["files"].__setitem__("weights.bin", 5), "is not a sha256 hex digest"),
    "graph extra field": (lambda m: m["graphs"][0].__setitem__("x", 1), "exactly the fields"),
    "graph not an object": (lambda m: m["graphs"].__setitem__(0, []), "exactly the fields"),
    "graph unlisted": (lambda m: m["graphs"][0].__setitem__("file", "nope.onnx"),
                       "'nope.onnx' is not listed under files"),
    "graph for no layer": (lambda m: m["graphs"][3].__setitem__("layer", "layer9"),
                           "which the layer table does not have"),
    "forward lacks a layer": (lambda m: m["forward"]["outputs"].pop(), "forward.outputs lacks"),
    "std zero": (lambda m: m["preprocessing"]["std"].__setitem__(1, 0), "std values must be positive"),
    "mean too short": (lambda m: m["preprocessing"]["mean"].pop(), "mean needs 3 values"),
    "nan mean": (lambda m: m["preprocessing"]["mean"].__setitem__(0, float("nan")), "finite numbers"),
    "not an object": (lambda m: ("replace", [m]), "is not an ortviz bundle manifest"),
    "version true": (lambda m: m.__setitem__("format_version", True), "format version True"),
    "no files": (lambda m: m.__setitem__("files", {}), "lists no files"),
    "wrong image size": (lambda m: [g["inputs"].__setitem__("image", [1, 3, 32, 33]) for g in m["graphs"]]
                         and m["input"].__setitem__("shape", [1, 3, 32, 33]),
                         "input 'image' has shape [1, 3, 32, 32], the manifest says [1, 3, 32, 33]"),
    "wrong layer shape": (lambda m: m["layers"][2].__setitem__("shape", [1, 8, 8, 9]), "has shape"),
    "grad output renamed": (lambda m: m["graphs"][0]["outputs"].__setitem__("grad", "g"),
                            "has no output 'g'"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_manifests_of_the_wrong_shape_are_refused_in_one_line(tmp_path, case, no_onnxruntime_loads):
    change, expect = MANIFEST_CASES[case]
    b = small_copy(tmp_path)
    edit_manifest(b, change)
    with pytest.raises(BundleError) as err:
        Bundle.open(b)
    assert expect in str(err.value) and "\n" not in str(err.value), str(err.value)
    r = invoke("info", b)
    assert r.exit_code == 2 and expect in one_error_line(r)
