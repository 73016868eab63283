"""The gradient checks every exported bundle goes through (export environment only).

For each graph of a bundle: the lowered graph against the training build's own graph (both
float32), against torch float64 autograd on the same network, and, for a few graphs, against a
central finite difference of the float64 torch loss along a random direction. Seeds are in
every failure message.
"""

import numpy as np
import onnx
import onnxruntime as ort

from reference import directional_fd, loss_and_grad
from tolerances import TOL_FD, TOL_RAW, TOL_TORCH, rel_err  # noqa: F401 (re-exported)


def feeds_for(inputs: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in inputs.items()}


def run_graph(model_or_path, feeds):
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, feeds)))
    grad = next(v for k, v in out.items() if k.endswith("_grad"))
    return float(np.asarray(out["loss"]).item()), grad


def check_default_domain_only(bundle, label: str) -> None:
    """Every graph of the bundle (the forward one too) passes onnx.checker's full check and holds
    only default-domain ops and opset imports (no com.microsoft training ops left unlowered)."""
    for file in [bundle.manifest["forward"]["file"]] + [g.file for g in bundle.graphs()]:
        path = str(bundle.path_of(file))
        onnx.checker.check_model(path, full_check=True)
        model = onnx.load(path, load_external_data=False)
        bad = sorted({(n.domain, n.op_type) for n in model.graph.node
                      if n.domain not in ("", "ai.onnx")})
        assert not bad, f"{label} {file}: non-standard ops {bad}"
        domains = {o.domain for o in model.opset_import}
        assert domains <= {"", "ai.onnx"}, f"{label} {file}: opset imports {sorted(domains)}"


# Gradient ops the training build itself cannot run on its CPU provider (no kernel, or its kernel
# fails), so graphs holding them are compared with torch only (check_against_torch).
RAW_UNRUNNABLE = {
    "ConvTransposeGrad": "no CPU kernel in onnxruntime-training 1.19.2",
    "SliceGrad": "its kernel fails ('narrowing_error') on a negative step with an INT64_MIN end",
}


def _raw_blockers(raw) -> set:
    return {n.op_type for n in raw.graph.node if n.op_type in RAW_UNRUNNABLE}


def check_against_training_build(bundle, graphs, label: str, seed: int = 0) -> float:
    """Every lowered graph against the training build's graph; returns the worst error. A raw
    graph may fail to run only when it holds an op of RAW_UNRUNNABLE (and the error says so)."""
    worst = 0.0
    for k, g in enumerate(graphs):
        entry = bundle.graph(g.objective, g.layer)
        feeds = feeds_for(entry.inputs, seed=seed + k)
        try:
            raw_loss, raw_grad = run_graph(g.raw, feeds)
        except Exception as exc:
            blockers = _raw_blockers(g.raw)
            assert any(op in str(exc) for op in blockers), \
                f"{label} {entry.file}: the training build's graph failed: {exc}"
            continue
        low_loss, low_grad = run_graph(str(bundle.path_of(entry.file)), feeds)
        err = rel_err(low_grad, raw_grad)
        assert err <= TOL_RAW, f"{label} {entry.file} seed={seed + k}: lowered vs raw rel err {err:.2e}"
        assert abs(low_loss - raw_loss) <= TOL_RAW * max(abs(raw_loss), 1.0), \
            f"{label} {entry.file} seed={seed + k}: loss {low_loss} vs raw {raw_loss}"
        worst = max(worst, err)
    return worst


def check_against_torch(net, bundle, label: str, seed: int = 100, tol: float = TOL_TORCH) -> dict:
    """Every graph of the bundle against torch float64 autograd. Returns the reference values
    (image, feeds, torch gradient and loss per graph file) for the runtime stage."""
    reference = {}
    image_name = bundle.input["name"]
    for k, entry in enumerate(bundle.graphs()):
        feeds = feeds_for(entry.inputs, seed=seed + k)
        image = feeds.pop(image_name)
        loss, grad = run_graph(str(bundle.path_of(entry.file)), {image_name: image, **feeds})
        ref_loss, ref_grad = loss_and_grad(net, entry.objective, entry.layer, image, feeds)
        err = rel_err(grad, ref_grad)
        assert err <= tol, f"{label} {entry.file} seed={seed + k}: rel err {err:.2e} vs torch float64"
        assert abs(loss - ref_loss) <= tol * max(abs(ref_loss), 1.0), \
            f"{label} {entry.file} seed={seed + k}: loss {loss} vs torch {ref_loss}"
        reference[entry.file] = dict(image=image, grad=ref_grad, loss=np.float64(ref_loss), **feeds)
    return reference


def check_finite_differences(net, bundle, objective: str, layer: str, label: str,
                             seeds=range(3), tol: float = TOL_FD, h: float = 1e-4) -> None:
    """<g, v> of the graph's gradient against a central difference of step ``h`` along random
    directions v. Deep ReLU / max-pool nets need a smaller step: a step that crosses a kink of
    the piecewise-linear loss gives a wrong difference, not a wrong gradient."""
    entry = bundle.graph(objective, layer)
    image_name = bundle.input["name"]
    for seed in seeds:
        feeds = feeds_for(entry.inputs, seed=200 + seed)
        image = feeds.pop(image_name)
        _, grad = run_graph(str(bundle.path_of(entry.file)), {image_name: image, **feeds})
        v = np.random.default_rng(300 + seed).standard_normal(image.shape)
        fd = directional_fd(net, objective, layer, image, feeds, v, h=h)
        ad = float((grad.astype(np.float64) * v).sum())
        assert abs(ad - fd) <= tol * max(abs(fd), 1e-3), \
            f"{label} {entry.file} seed={200 + seed}: <g,v>={ad:.6g} vs central difference " \
            f"{fd:.6g} (h={h:g})"


def save_reference(path, reference: dict) -> None:
    np.savez(path, **{f"{f}::{k}": v for f, d in reference.items() for k, v in d.items()})

