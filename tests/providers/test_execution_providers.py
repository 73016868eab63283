"""Every graph ortviz writes, wholly on another execution provider, against the CPU provider.

Stage 3 of scripts/test.sh, in the environment whose onnxruntime build has the provider:
``.venv-openvino`` (onnxruntime-openvino) for OpenVINO, ``.venv-gpu`` for CUDA
(scripts/check-cuda.sh). ``ORTVIZ_TEST_PROVIDER`` names it (default ``openvino``); a provider the
installed onnxruntime lacks fails every test here, it is never skipped.

Bundles: every directory holding a manifest.json one or two levels below ARTIFACTS (the export
stage writes them there), and the embedded default. For the forward graph and every gradient
graph of each, a session on the provider alone (``session.disable_cpu_ep_fallback``: a node the
provider does not take fails the test instead of running quietly on the CPU) and a CPU session
get the same seeded standard-normal inputs; every output must agree to TOLERANCE, measured as
max|provider - cpu| / max|cpu|, and the loss must be finite. ``ORTVIZ_EXPECT_TEST_BUNDLES=N``
makes fewer than N bundles under ARTIFACTS a failure (so a run cannot test only the default).
``ORTVIZ_TEST_SEED`` changes the inputs. Each graph test records its worst error as the
``rel_err`` property (``--junitxml=FILE -o junit_family=legacy`` writes them).
"""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from ortviz.bundle.embedded import default_bundle
from ortviz.bundle.reader import Bundle
from ortviz.cli import app
from ortviz.errors import first_line

from support import ARTIFACTS
from tolerances import rel_err

PROVIDER = os.environ.get("ORTVIZ_TEST_PROVIDER", "openvino").strip().lower()
SEED = int(os.environ.get("ORTVIZ_TEST_SEED", "0"))
FALLBACK = "session.disable_cpu_ep_fallback"

# short name -> (onnxruntime provider, its options, tolerance on max|a-b|/max|b| against CPU).
SETTINGS = {
    # device_type CPU: OpenVINO's CPU plugin (the device every x86 machine has). precision FP32:
    # the plugin's default can be bf16 on CPUs with native bf16 matrix units (AMX); it accepts
    # FP32 and ACCURACY here, and an unknown value or option makes the provider fail to load,
    # which fails the test. Worst errors measured (onnxruntime-openvino 1.24.1, seed 0, 2-core
    # AVX-512 Xeon): bundle format 2, 2.0e-5 on EfficientNet-Lite0 (grad.features___blocks.15,
    # standard-normal W and A), at most 4.1e-6 on the export stage's test bundles; 1e-4 leaves a
    # margin of 5x or more (format 1: 8.2e-6, grad.feature_distance___conv_stem).
    "openvino": ("OpenVINOExecutionProvider", {"device_type": "CPU", "precision": "FP32"}, 1e-4),
    # use_tf32 0: TF32 convolutions and GEMMs (on by default on Ampere and newer) keep a 10-bit
    # mantissa, about 1e-3 relative; without them cuDNN still picks other fp32 algorithms than
    # MLAS (Winograd, FFT, other summation orders), whose rounding grows through ~50 convs of
    # EfficientNet and again through the backward pass, so CUDA gets 1e-3 (not measured here:
    # no GPU). cudnn_conv_algo_search DEFAULT: deterministic algorithm choice, no timing search.
    "cuda": ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "DEFAULT", "use_tf32": "0"}, 1e-3),
}
EP, OPTIONS, TOLERANCE = SETTINGS.get(PROVIDER, (None, {}, None))
if PROVIDER == "cuda" and hasattr(ort, "preload_dlls"):
    ort.preload_dlls()  # CUDA and cuDNN from the nvidia-* wheels (onnxruntime-gpu[cuda,cudnn])


def _bundle_dirs() -> list[Path]:
    found = []
    for pattern in ("*/manifest.json", "*/*/manifest.json"):
        found += [m.parent for m in sorted(ARTIFACTS.glob(pattern))
                  # ".NAME.tmp-*" / ".NAME.old-*": an export's own working copies, not bundles
                  if not any(p.startswith(".") for p in m.parent.relative_to(ARTIFACTS).parts)]
    return found


ARTIFACT_BUNDLES = _bundle_dirs() if ARTIFACTS.is_dir() else []
BUNDLES = ARTIFACT_BUNDLES + [default_bundle()]


def label(d: Path) -> str:
    return d.name if d == default_bundle() else str(d.relative_to(ARTIFACTS))


def _cases():
    """(bundle dir, graph file or None) for each graph, read at collection; None: the manifest
    could not be read, the test then fails with the reason."""
    cases = []
    for d in BUNDLES:
        try:
            b = Bundle.open(d, verify=False)
            files = [b.manifest["forward"]["file"]] + [g.file for g in b.graphs()]
            b.close()
        except Exception:  # reported by the test itself (Bundle.open again, verified)
            files = [None]
        cases += [pytest.param(d, f, id=f"{label(d)}/{f}") for f in files]
    return cases


@functools.lru_cache(maxsize=None)
def opened(d: Path) -> Bundle:
    return Bundle.open(d)  # verified: every hash, every graph's inputs and outputs


def require_provider():
    """Fail (never skip) where the provider under test is not in this onnxruntime build."""
    if EP is None:
        pytest.fail(f"ORTVIZ_TEST_PROVIDER={PROVIDER!r} is not one of {', '.join(SETTINGS)}",
                    pytrace=False)
    have = ort.get_available_providers()
    if EP not in have:
        pytest.fail(f"{EP} is not in this onnxruntime build ({ort.__file__}; has "
                    f"{', '.join(have)}): run tests/providers in the environment that has it "
                    f"(.venv-openvino for openvino, .venv-gpu for cuda)", pytrace=False)


def cpu_placed(path: Path) -> str:
    """What onnxruntime leaves on the CPU provider when fallback is allowed, from its verbose
    log: a count and the op types, e.g. '152 nodes (Conv x49, Clip x33, ...)'."""
    so = ort.SessionOptions()
    so.log_severity_level = 0
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # model's own ops
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            ort.InferenceSession(str(path), so, providers=[(EP, OPTIONS), "CPUExecutionProvider"])
        except Exception as exc:
            return f"unknown (with fallback too: {first_line(exc)})"
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = re.sub(r"\x1b\[[0-9;]*m", "", log.read().decode(errors="replace"))
    ops, on_cpu, count = collections.Counter(), False, 0
    for line in text.splitlines():
        head = re.search(r"(All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)", line)
        if head:
            on_cpu = head.group(2) == "CPUExecutionProvider"
            if on_cpu:
                count += int(head.group(3))
            if on_cpu and head.group(1) == "All nodes":  # the log lists none: the model's ops
                graph = onnx.load(str(path), load_external_data=False).graph
                ops.update(n.op_type for n in graph.node)
        elif on_cpu and (node := re.search(r"VerifyEachNodeIsAssignedToAnEp\]\s+(\S+) \(", line)):
            ops[node.group(1)] += 1
        elif "VerifyEachNodeIsAssignedToAnEp" not in line:
            on_cpu = False
    if not count:
        return "none found in the log"
    kinds = ", ".join(f"{op} x{n}" for op, n in ops.most_common(8))
    return f"{count} nodes ({kinds}{', ...' if len(ops) > 8 else ''})"


def provider_session(path: Path, where: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 4  # failures are reported below, in one line
    so.add_session_config_entry(FALLBACK, "1")
    try:
        sess, msg = ort.InferenceSession(str(path), so, providers=[(EP, OPTIONS)]), None
    except Exception as exc:
        msg = first_line(exc)
    if msg and "Conflicting session configuration" in msg:  # onnxruntime retried on CPU alone
        pytest.fail(f"{where}: {EP} could not be created with options {OPTIONS} (an option or "
                    "value this build does not know?)", pytrace=False)
    if msg:
        pytest.fail(f"{where}: not wholly on {EP}; left on CPU: {cpu_placed(path)}; "
                    f"onnxruntime: {msg}", pytrace=False)
    assert sess.get_providers()[0] == EP, f"{where}: session providers {sess.get_providers()}"
    return sess


@pytest.mark.parametrize("bundle_dir,file", _cases())
def test_graph_wholly_on_provider_matches_cpu(bundle_dir, file, record_property):
    require_provider()
    try:
        bundle = opened(bundle_dir)
    except Exception as exc:
        pytest.fail(f"{bundle_dir}: cannot open the bundle: {first_line(exc)}", pytrace=False)
    assert file is not None, f"{bundle_dir}: opened now, but not at collection (changed since?)"
    entry = next((g for g in bundle.graphs() if g.file == file), None)
    if entry is None:  # the forward graph
        assert file == bundle.manifest["forward"]["file"], f"{bundle_dir}: {file} left the manifest"
        path, inputs = bundle.forward_path, {bundle.input["name"]: bundle.input["shape"]}
    else:
        path, inputs = bundle.path_of(file), entry.inputs
    where = f"{label(bundle_dir)} {file} on {PROVIDER}"
    sess = provider_session(path, where)
    cpu_opts = ort.SessionOptions()
    cpu_opts.log_severity_level = 3
    cpu = ort.InferenceSession(str(path), cpu_opts, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(SEED)
    feeds = {n: rng.standard_normal(s, dtype=np.float32) for n, s in inputs.items()}
    names = [o.name for o in cpu.get_outputs()]
    got, ref = sess.run(names, feeds), cpu.run(names, feeds)
    if entry is not None:
        assert set(entry.outputs.values()) <= set(names), f"{where}: outputs {names}"
        loss = got[names.index(entry.outputs["loss"])]
        assert loss.size == 1 and np.isfinite(loss).all(), f"{where}: loss {loss} (seed {SEED})"
    worst = 0.0
    for name, a, b in zip(names, got, ref):
        assert a.shape == b.shape, f"{where}: output {name}: shape {a.shape} != cpu {b.shape}"
        assert np.isfinite(b).all(), f"{where}: output {name}: not finite on CPU (seed {SEED})"
        err = rel_err(a, b)
        worst = max(worst, err)
        assert err <= TOLERANCE, (f"{where}: output {name}: max|{PROVIDER}-cpu|/max|cpu| = "
                                  f"{err:.2e} > {TOLERANCE:.0e} (seed {SEED})")
    record_property("rel_err", f"{worst:.3e}")


def test_the_export_stage_bundles_were_found():
    require_provider()
    want = int(os.environ.get("ORTVIZ_EXPECT_TEST_BUNDLES", "0"))
    names = [str(d.relative_to(ARTIFACTS)) for d in ARTIFACT_BUNDLES]
    assert len(names) >= want, (f"ORTVIZ_EXPECT_TEST_BUNDLES={want} but {len(names)} bundle(s) "
                                f"under {ARTIFACTS}: {', '.join(names) or 'none'}")
    assert default_bundle().joinpath("manifest.json").is_file(), f"no default at {default_bundle()}"


def test_cli_dream_on_the_provider(tmp_path):
    require_provider()
    out = tmp_path / "dream.png"
    r = CliRunner().invoke(app, ["dream", "--provider", PROVIDER, "--iterations", "2",
                                 "--octaves", "2", "--max-side", "160", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert max(Image.open(out).size) == 160
    meta = json.loads(out.with_suffix(".png.json").read_text())
    assert meta["provider"] == PROVIDER and meta["status"] == "complete", meta
    assert meta["timing"]["iterations"] == 4 and np.isfinite(meta["final_objective"]), meta
