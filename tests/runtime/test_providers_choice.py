"""Which execution provider a run gets: built in, plugin EP packages, ``auto``, and the errors.

A real plugin EP needs its hardware; these tests use a plugin *package* that is real Python on
``sys.path`` (found and imported as a user's would be) whose library cannot load, and, for the
devices a working plugin would offer, stand-ins for ``OrtEpDevice`` (only their names are read
before the session gets them).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ortviz.bundle.embedded import default_bundle
from ortviz.engine import providers
from ortviz.engine.providers import Choice, Plugin, ProviderError, resolve
from ortviz.engine.sessions import Engine

from probes import invoke, one_error_line


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """Every test looks the plugins up anew (they are cached per process)."""
    monkeypatch.setattr(providers, "_PLUGINS", None)
    monkeypatch.delenv("ORTVIZ_EP_PLUGINS", raising=False)
    yield
    providers._PLUGINS = None


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    pkg = tmp_path / "onnxruntime_ep_fakeep"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "def get_ep_names():\n    return ['FakeEpExecutionProvider']\n"
        f"def get_library_path():\n    return {str(tmp_path / 'libmissing.so')!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fakeep"


def test_auto_is_cpu_on_stock_onnxruntime():
    assert resolve("auto").short == "cpu"
    so = SimpleNamespace()
    assert resolve("cpu").providers(so, 2) == ["CPUExecutionProvider"]


@pytest.mark.parametrize("bad,says", [("tpu9", "unknown execution provider 'tpu9'"),
                                      ("openvino", "not in this onnxruntime build")])
def test_unknown_or_missing_provider_is_one_line(bad, says, tmp_path):
    with pytest.raises(ProviderError, match=says):
        resolve(bad)
    line = one_error_line(invoke("class-viz", "--iterations", "1", "--provider", bad, "-o", tmp_path / "x.png"))
    assert says in line and "available here: cpu" in line, line
    assert not list(tmp_path.iterdir())


def test_a_plugin_package_that_cannot_load_is_named_and_skipped(broken_plugin):
    found = providers.plugins()
    assert broken_plugin in found and found[broken_plugin].error, found
    assert resolve("auto").short == "cpu"
    with pytest.raises(ProviderError, match="onnxruntime_ep_fakeep could not be loaded"):
        resolve("fakeep")
    with pytest.raises(ProviderError, match="could not be loaded"):
        resolve("FakeEpExecutionProvider")  # the EP's own name works too
    r = invoke("providers")
    assert r.exit_code == 0, r.output
    line = next(l for l in r.output.splitlines() if l.startswith("fakeep"))
    assert "plugin package onnxruntime_ep_fakeep" in line and "not usable" in line, r.output


def test_the_allow_list_keeps_plugins_out(broken_plugin, monkeypatch):
    monkeypatch.setenv("ORTVIZ_EP_PLUGINS", "none")
    assert broken_plugin not in providers.plugins()
    providers._PLUGINS = None
    monkeypatch.setenv("ORTVIZ_EP_PLUGINS", "onnxruntime_ep_other")
    assert broken_plugin not in providers.plugins()
    providers._PLUGINS = None
    monkeypatch.setenv("ORTVIZ_EP_PLUGINS", "onnxruntime_ep_fakeep")
    assert broken_plugin in providers.plugins()


def test_a_plugin_with_a_device_is_what_auto_picks(monkeypatch):
    dev = SimpleNamespace(ep_name="OpenVINOExecutionProvider",
                          device=SimpleNamespace(type=SimpleNamespace(name="CPU"), vendor="Intel"))
    monkeypatch.setattr(providers, "_PLUGINS",
                        {"openvino": Plugin("onnxruntime_ep_openvino", ["OpenVINOExecutionProvider"], [dev])})
    choice = resolve("auto")
    assert (choice.short, choice.kind, choice.devices) == ("openvino", "plugin", [dev])
    calls = []
    so = SimpleNamespace(add_provider_for_devices=lambda d, o: calls.append((d, o)))
    assert choice.providers(so, threads=3) is None  # the session takes the devices from `so`
    assert calls == [([dev], {"precision": "FP32", "num_of_threads": "3"})]
    row = next(r for r in providers.describe() if r["name"] == "openvino")
    assert row["auto"] and row["usable"] and row["devices"] == ["cpu (Intel)"], row


def test_a_plugin_without_a_device_is_not_usable(monkeypatch):
    monkeypatch.setattr(providers, "_PLUGINS",
                        {"openvino": Plugin("onnxruntime_ep_openvino", ["OpenVINOExecutionProvider"], [])})
    assert resolve("auto").short == "cpu"
    with pytest.raises(ProviderError, match="offers no device on this machine"):
        resolve("openvino")


def test_builtin_openvino_gets_fp32_and_the_thread_count():
    choice = Choice("openvino", "builtin", {"precision": "FP32"})
    assert choice.providers(SimpleNamespace(), threads=2) == [
        ("OpenVINOExecutionProvider", {"precision": "FP32", "num_of_threads": "2"}), "CPUExecutionProvider"]
    assert choice.providers(SimpleNamespace()) == [
        ("OpenVINOExecutionProvider", {"precision": "FP32"}), "CPUExecutionProvider"]


def test_the_engine_runs_on_the_chosen_provider():
    engine = Engine(default_bundle(), provider="auto", threads=1)
    assert engine.provider == "cpu"
    x = np.zeros(engine.image_shape, np.float32)
    assert np.isfinite(engine.logits(x)).all()
    sess = engine.session(engine.bundle.manifest["forward"]["file"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
