"""Bundle identity and format 2: every graph records the bundle, objective and layer it computes
(ONNX metadata_props) and opening a bundle checks them against the manifest; a format-1 bundle
gets one "re-export" line; manifest values are sane (labels, std). Each case edits a copy of the
default bundle as an attacker would (hashes updated), so only these checks can refuse it."""

import json
import shutil

import onnx
import pytest
from typer.testing import CliRunner

from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle, BundleError, sha256
from ortviz.cli import app

pytestmark = pytest.mark.runtime


def copy(tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(default_bundle(), dst)
    return dst


def manifest(b):
    return json.loads((b / "manifest.json").read_text())


def write_manifest(b, m, rehash=()):
    for rel in rehash:
        m["files"][rel] = sha256(b / rel)
    (b / "manifest.json").write_text(json.dumps(m))


def refused(b, expect):
    with pytest.raises(BundleError) as err:
        Bundle.open(b)
    msg = str(err.value)
    assert expect in msg and "\n" not in msg, msg
    r = CliRunner().invoke(app, ["info", str(b)])
    assert r.exit_code == 2 and expect in r.output, r.output
    return msg


def test_every_graph_records_what_it_computes():
    b = Bundle.open(default_bundle())
    bid = b.manifest["bundle_id"]
    for g in b.graphs():
        props = {p.key: p.value for p in onnx.load(str(b.path_of(g.file)),
                                                   load_external_data=False).metadata_props}
        assert props["ortviz.bundle"] == bid and props["ortviz.role"] == "gradient", g.file
        assert (props["ortviz.objective"], props["ortviz.layer"], props["ortviz.tensor"]) == \
            (g.objective, g.layer, g.tensor), g.file
    fwd = onnx.load(str(b.forward_path), load_external_data=False)
    assert {p.key: p.value for p in fwd.metadata_props}["ortviz.role"] == "forward"


def test_swapped_graph_files_are_refused(tmp_path):
    """Two gradient graph files swapped, hashes updated: DeepDream 'at _blocks.10' would run
    _blocks.5's graph (same inputs' shapes apart, the graphs would load)."""
    b = copy(tmp_path)
    a, c = b / "grad.features___blocks.10.onnx", b / "grad.features___blocks.9.onnx"
    tmp = b / "swap"
    a.rename(tmp)
    c.rename(a)
    tmp.rename(c)
    write_manifest(b, manifest(b), rehash=[a.name, c.name])
    refused(b, "records layer")


def test_swapped_manifest_entries_are_refused(tmp_path):
    """The manifest's entries point at each other's files (no hash changes at all)."""
    b = copy(tmp_path)
    m = manifest(b)
    e9 = next(g for g in m["graphs"] if g["layer"] == "_blocks.9")
    e10 = next(g for g in m["graphs"] if g["layer"] == "_blocks.10")
    e9["file"], e10["file"] = e10["file"], e9["file"]
    write_manifest(b, m)
    refused(b, "records layer")


def test_a_graph_from_another_bundle_is_refused(tmp_path):
    b = copy(tmp_path)
    rel = "grad.features___blocks.3.onnx"
    model = onnx.load(str(b / rel), load_external_data=False)
    for p in model.metadata_props:
        if p.key == "ortviz.bundle":
            p.value = "0" * 32
    (b / rel).write_bytes(model.SerializeToString())
    write_manifest(b, manifest(b), rehash=[rel])
    refused(b, "records bundle '00000000")


def test_a_graph_without_identity_is_refused(tmp_path):
    b = copy(tmp_path)
    rel = "grad.logits__logits.onnx"
    model = onnx.load(str(b / rel), load_external_data=False)
    del model.metadata_props[:]
    (b / rel).write_bytes(model.SerializeToString())
    write_manifest(b, manifest(b), rehash=[rel])
    refused(b, "records bundle nothing")


def test_format_1_bundle_gets_one_re_export_line(tmp_path):
    b = copy(tmp_path)
    m = manifest(b)
    m["format_version"] = 1
    write_manifest(b, m)
    msg = refused(b, "format version 1")
    assert "re-export it with this version of ortviz" in msg


@pytest.mark.parametrize("change,expect", [
    (lambda m: m["labels"].__setitem__(5, "ray\x1b[31m red"), "label 5 holds a control character"),
    (lambda m: m["labels"].__setitem__(7, "cock\u202e"), "label 7 holds a control character"),
    (lambda m: m["labels"].__setitem__(8, "hen\nrooster"), "label 8 holds a control character"),
    (lambda m: m["preprocessing"]["std"].__setitem__(0, 1e-9), "not vanishing"),
    (lambda m: m["preprocessing"]["std"].__setitem__(2, -1.0), "not vanishing"),
    (lambda m: m.__setitem__("bundle_id", "xyz"), "bundle_id is not 32 hex digits"),
    (lambda m: m.pop("bundle_id"), "no 'bundle_id' field"),
])
def test_manifest_values_are_sane(tmp_path, change, expect):
    b = copy(tmp_path)
    m = manifest(b)
    change(m)
    write_manifest(b, m)
    refused(b, expect)
