"""What each lowering speed-up buys: the same gradient graphs lowered with and without each
rewrite, timed interleaved on stock ONNX Runtime.

    python bench/lowering_ab.py [--quick]       (any python; runs the two phases below)
    python bench/lowering_ab.py build           export environment: training-build gradients,
                                                lowered once per variant into build/bench/lowering
    python bench/lowering_ab.py time            runtime environment: interleaved timing

Variants (``speedups`` passed to ``ortviz.export.lowering.lower``):
  before          every ConvGrad as ConvTranspose, the builder's Clip mask (the first bundles)
  conv            + stride-1 ConvGrad as Conv with transposed, flipped weights
  conv+mask-x     + the Clip mask as Equal(X, Clip(X)) + Cast + Mul   (shipped until issue #14)
  conv+mask       + the Clip mask from the Clip output Y alone, Equal(Y, Clip(Y, lo+, hi-)) + Cast
                  + Mul, so ORT fuses Conv + Clip again                 (issue #14)
  shipped         + strided depthwise ConvGrad with a 5x5 (or larger) kernel as zeros spread
                  between dY's pixels and a stride-1 depthwise Conv   (issue #14; what ortviz ships)
Alternatives that were measured and not kept (the "shipped+" ones: conv+mask with every strided
ConvGrad in that form):
  conv+mask-where       the Clip mask as Where(And(X >= lo, X <= hi), dY, 0)
  conv+mask-blocked     the Clip mask in ORT's blocked layout: two 1x1 depthwise "step" convs
                        on the Clip output, clip(2^100 * (Y - lo)) and clip(2^100 * (hi - Y))
  shipped+polyphase     strided ConvGrad too, as one Conv per output phase + DepthToSpace + crop
  shipped+zero-insertion  strided ConvGrad too, as zeros spread between dY's pixels (ConvTranspose
                        of 1x1 ones) and a stride-1 Conv
  conv+mask-y-gt-lt     the mask from Y as Cast(And(Y > lo, Y < hi))
  conv+mask-y-prod-gt   the mask from Y as Cast((Y - lo) * (hi - Y) > 0)
  shipped+zero-pad      strided ConvGrad as zeros inserted by Reshape + Pad + Reshape, then a
                        stride-1 Conv
  shipped+zero-insertion-dw  shipped, and the 3x3 strided depthwise ConvGrads by zero insertion too
  shipped+mask-blocked  shipped with conv+mask-blocked's mask (not exact for 0 < Y < 2^-100)
and, on a ReLU network (tests/nets.py's small ResNet at 224x224), ReluGrad as Greater + Where
(before) against Greater + Cast + Mul (shipped).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

OUT = common.ROOT / "build" / "bench" / "lowering"
ORDER = ["before", "conv", "conv+mask-x", "conv+mask", "shipped", "conv+mask-where", "conv+mask-blocked", "shipped+polyphase",
         "shipped+zero-insertion", "conv+mask-y-gt-lt", "conv+mask-y-prod-gt", "shipped+zero-pad",
         "shipped+zero-insertion-dw", "shipped+mask-blocked",
         "relu-where", "relu-cast-mul"]
SHIPPED = {"shipped", "relu-cast-mul"}
LITE0 = {"class-score@logits": ("class_score", "logits"),
         f"feature-distance@{common.INVERT_LAYER}": ("feature_distance", common.INVERT_LAYER),
         f"feature-energy@{common.DREAM_LAYER}": ("feature_energy", common.DREAM_LAYER)}


# -- the alternatives (built on lowering's own helpers) ----------------------------------------

def _variants():
    import numpy as np
    import onnx

    from ortviz.export import lowering as L, speedups as S

    def clip_mask(node, ctx):
        """(dY, X, lo, hi, Clip node) of the builder's Clip-gradient Mul, or None."""
        for j in (0, 1):
            cast = ctx.producer.get(node.input[j])
            if cast is None or cast.op_type != "Cast":
                continue
            both = ctx.producer.get(cast.input[0])
            if both is None or both.op_type != "And":
                continue
            cmp = {p.op_type: p for p in (ctx.producer.get(i) for i in both.input) if p}
            ge, le = cmp.get("GreaterOrEqual"), cmp.get("LessOrEqual")
            if ge is None or le is None or ge.input[0] != le.input[0]:
                continue
            x, lo, hi = ge.input[0], ge.input[1], le.input[1]
            clip = next((c for c in ctx.consumers.get(x, []) if c.op_type == "Clip"
                         and list(c.input[1:3]) == [lo, hi]), None)
            return node.input[1 - j], x, lo, hi, clip, both
        return None

    def mask_where(node, ctx):
        m = clip_mask(node, ctx)
        if m is None:
            return None
        dy, _, _, _, _, both = m
        return [ctx.node("Where", [both.output[0], dy, ctx.const(0.0, np.float32)], [node.output[0]])]

    def mask_blocked(node, ctx):
        m = clip_mask(node, ctx)
        if m is None or m[4] is None or m[1] not in ctx.shapes:
            return None
        dy, x, lo, hi, clip, _ = m
        c = ctx.shapes[x][1]
        big = np.float32(2.0 ** 100)
        lo_v, hi_v = float(ctx.consts[lo]), float(ctx.consts[hi])
        zero, one = ctx.const(0.0, np.float32), ctx.const(1.0, np.float32)
        nodes, steps = [], []
        for w, b in ((big, -big * lo_v), (-big, big * hi_v)):
            conv = ctx.node("Conv", [clip.output[0], ctx.const(np.full((c, 1, 1, 1), w, np.float32)),
                                     ctx.const(np.full((c,), b, np.float32))], group=c, kernel_shape=[1, 1])
            step = ctx.node("Clip", [conv.output[0], zero, one])
            nodes += [conv, step]
            steps.append(step.output[0])
        both = ctx.node("Mul", steps)
        return nodes + [both, ctx.node("Mul", [dy, both.output[0]], [node.output[0]])]

    def polyphase(node, ctx):
        """Strided ConvTranspose (2-D, no dilation, constant weights) as one Conv on dY whose
        s_h*s_w output channels per input channel are the output phases, DepthToSpace (CRD)
        and a crop."""
        dy, w = node.input[:2]
        ws = ctx.weights.get(w)
        a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
        s = list(a.get("strides") or [1, 1])
        if (ws is None or len(ws) != 4 or s == [1, 1] or s[0] != s[1] or any(v != 1 for v in a.get("dilations") or [1, 1])
                or len(node.input) > 2 or dy not in ctx.shapes or node.output[0] not in ctx.shapes):
            return None
        ys, xs = ctx.shapes[dy], ctx.shapes[node.output[0]]
        k, pads, g = list(ws[2:]), list(a.get("pads") or [0] * 4), int(a.get("group", 1))
        j = [-(-k[i] // s[i]) for i in range(2)]
        q0 = [pads[i] // s[i] for i in range(2)]
        q = [(pads[i] + xs[2 + i] - 1) // s[i] - q0[i] + 1 for i in range(2)]
        begin = [j[i] - 1 - q0[i] for i in range(2)]
        end = [q[i] - ys[2 + i] - begin[i] + j[i] - 1 for i in range(2)]
        if min(begin + end) < 0:
            return None
        cy, cx_g = ws[0], ws[1]
        nodes, out = [], w
        extra = [j[0] * s[0] - k[0], j[1] * s[1] - k[1]]
        if any(extra):
            nodes.append(ctx.node("Pad", [w, ctx.const([0, 0, 0, 0, 0, 0, *extra], np.int64)]))
            out = nodes[-1].output[0]
        r = ctx.node("Reshape", [out, ctx.const([g, cy // g, cx_g, j[0], s[0], j[1], s[1]], np.int64)])
        f = ctx.node("Slice", [r.output[0], ctx.const([-1, -1], np.int64),
                               ctx.const([np.iinfo(np.int64).min] * 2, np.int64),
                               ctx.const([3, 5], np.int64), ctx.const([-1, -1], np.int64)])
        t = ctx.node("Transpose", [f.output[0]], perm=[0, 2, 4, 6, 1, 3, 5])
        w2 = ctx.node("Reshape", [t.output[0], ctx.const([g * cx_g * s[0] * s[1], cy // g, *j], np.int64)])
        conv = ctx.node("Conv", [dy, w2.output[0]], group=g, kernel_shape=j, pads=begin + end)
        d2s = ctx.node("DepthToSpace", [conv.output[0]], blocksize=s[0], mode="CRD")
        crop = [pads[i] - q0[i] * s[i] for i in range(2)]
        sl = ctx.node("Slice", [d2s.output[0], ctx.const(crop, np.int64),
                                ctx.const([crop[i] + xs[2 + i] for i in range(2)], np.int64),
                                ctx.const([2, 3], np.int64)], [node.output[0]])
        return nodes + [r, f, t, w2, conv, d2s, sl]

    def zero_insertion(node, ctx):
        """Strided ConvTranspose as zeros inserted between dY's pixels (a ConvTranspose of 1x1
        ones per channel) and a stride-1 Conv with transposed, flipped weights."""
        dy, w = node.input[:2]
        ws = ctx.weights.get(w)
        a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
        n = len(ws) - 2 if ws else 0
        s = list(a.get("strides") or [1] * n)
        if ws is None or dy not in ctx.shapes or all(v == 1 for v in s) or len(node.input) > 2:
            return None
        k, d = list(ws[2:]), list(a.get("dilations") or [1] * n)
        pads, op = list(a.get("pads") or [0] * (2 * n)), list(a.get("output_padding") or [0] * n)
        begin = [d[i] * (k[i] - 1) - pads[i] for i in range(n)]
        end = [d[i] * (k[i] - 1) - pads[n + i] + op[i] for i in range(n)]
        if min(begin + end) < 0:
            return None
        g = int(a.get("group", 1))
        w2, nodes = S._conv_weights(ctx, w, ws, g)
        c = ctx.shapes[dy][1]
        ones = ctx.node("ConstantOfShape", [ctx.const([c, 1] + [1] * n, np.int64)],
                        value=onnx.numpy_helper.from_array(np.ones(1, np.float32)))
        spread = ctx.node("ConvTranspose", [dy, ones.output[0]], group=c, kernel_shape=[1] * n, strides=s)
        return nodes + [ones, spread, ctx.node("Conv", [spread.output[0], w2], [node.output[0]], group=g,
                                               kernel_shape=k, dilations=d, pads=begin + end)]

    def mask_x(node, ctx):
        """The mask shipped before issue #14: Cast(Equal(X, Clip(X))), X the pre-activation."""
        m = clip_mask(node, ctx)
        if m is None or m[4] is None:
            return None
        dy, x, _, _, clip, _ = m
        eq = ctx.node("Equal", [x, clip.output[0]])
        mask = ctx.node("Cast", [eq.output[0]], to=onnx.TensorProto.FLOAT)
        return [eq, mask, ctx.node("Mul", [dy, mask.output[0]], [node.output[0]])]

    def mask_from_y(form):
        """Other forms of the shipped mask from the Clip output Y alone (lo < Y < hi):
        "gt-lt" Cast(And(Y > lo, Y < hi)); "prod-gt" Cast((Y - lo) * (hi - Y) > 0)."""
        def rule(node, ctx):
            m = clip_mask(node, ctx)
            if m is None or m[4] is None or m[2] not in ctx.consts or m[3] not in ctx.consts:
                return None
            dy, _, lo, hi, clip, _ = m
            y = clip.output[0]
            lo_v, hi_v = np.float32(ctx.consts[lo]), np.float32(ctx.consts[hi])
            nodes = []
            if form == "gt-lt":
                nodes += [ctx.node("Greater", [y, lo]), ctx.node("Less", [y, hi])]
                nodes.append(ctx.node("And", [nodes[0].output[0], nodes[1].output[0]]))
                nodes.append(ctx.node("Cast", [nodes[-1].output[0]], to=onnx.TensorProto.FLOAT))
            elif form == "prod-gt":
                if hi_v - lo_v < 1:
                    return None
                a = y
                if lo_v != 0:
                    nodes.append(ctx.node("Sub", [y, lo]))
                    a = nodes[-1].output[0]
                nodes.append(ctx.node("Sub", [hi, y]))
                nodes.append(ctx.node("Mul", [a, nodes[-1].output[0]]))
                nodes.append(ctx.node("Greater", [nodes[-1].output[0], ctx.const(0.0, np.float32)]))
                nodes.append(ctx.node("Cast", [nodes[-1].output[0]], to=onnx.TensorProto.FLOAT))
            return nodes + [ctx.node("Mul", [dy, nodes[-1].output[0]], [node.output[0]])]
        return rule

    def zero_pad(node, ctx):
        """Strided ConvTranspose as zeros inserted by Reshape to [N, C, H, 1, W, 1], Pad and
        Reshape, then a stride-1 Conv with transposed, flipped weights."""
        dy, w = node.input[:2]
        ws = ctx.weights.get(w)
        a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
        s = list(a.get("strides") or [1, 1])
        if (ws is None or len(ws) != 4 or dy not in ctx.shapes or all(v == 1 for v in s)
                or len(node.input) > 2):
            return None
        k, d = list(ws[2:]), list(a.get("dilations") or [1, 1])
        pads, op = list(a.get("pads") or [0] * 4), list(a.get("output_padding") or [0, 0])
        begin = [d[i] * (k[i] - 1) - pads[i] for i in range(2)]
        end = [d[i] * (k[i] - 1) - pads[2 + i] + op[i] - (s[i] - 1) for i in range(2)]
        if min(begin + end) < 0:
            return None
        n_, c, h, wd = ctx.shapes[dy]
        g = int(a.get("group", 1))
        w2, nodes = S._conv_weights(ctx, w, ws, g)
        r = ctx.node("Reshape", [dy, ctx.const([n_, c, h, 1, wd, 1], np.int64)])
        z = ctx.node("Pad", [r.output[0], ctx.const([0, 0, 0, 0, 0, 0, 0, 0, 0, s[0] - 1, 0, s[1] - 1], np.int64)])
        r2 = ctx.node("Reshape", [z.output[0], ctx.const([n_, c, h * s[0], wd * s[1]], np.int64)])
        return nodes + [r, z, r2, ctx.node("Conv", [r2.output[0], w2], [node.output[0]], group=g,
                                           kernel_shape=k, dilations=d, pads=begin + end)]

    conv = {"ConvTranspose": [r for r in L.SPEEDUPS["ConvTranspose"] if r[0] == "conv-transpose-as-conv"]}
    mask = {**conv, "Mul": L.SPEEDUPS["Mul"]}
    return {
        "before": {},
        "conv": conv,
        "conv+mask-x": {**conv, "Mul": [("mask-x", mask_x)]},
        "conv+mask": mask,
        "shipped": L.SPEEDUPS,
        "conv+mask-where": {**conv, "Mul": [("mask-where", mask_where)]},
        "conv+mask-blocked": {**conv, "Mul": [("mask-blocked", mask_blocked)]},
        "shipped+mask-blocked": {**L.SPEEDUPS, "Mul": [("mask-blocked", mask_blocked)]},
        "shipped+polyphase": {**mask, "ConvTranspose": conv["ConvTranspose"] + [("polyphase", polyphase)]},
        "shipped+zero-insertion": {**mask, "ConvTranspose": conv["ConvTranspose"]
                                   + [("zero-insertion", zero_insertion)]},
        **{f"conv+mask-y-{f}": {**conv, "Mul": [(f"mask-y-{f}", mask_from_y(f))]}
           for f in ("gt-lt", "prod-gt")},
        "shipped+zero-insertion-dw": {**L.SPEEDUPS, "ConvTranspose": L.SPEEDUPS["ConvTranspose"] + [(
            "zero-insertion-dw", lambda n, c: zero_insertion(n, c) if (c.weights.get(n.input[1]) or (0, 0))[1] == 1
            and any(x.name == "group" and x.i > 1 for x in n.attribute) else None)]},
        "shipped+zero-pad": {**mask, "ConvTranspose": conv["ConvTranspose"] + [("zero-pad", zero_pad)]},
    }


def _relu_where(node, ctx):
    import numpy as np
    dy, y = node.input[:2]
    mask = ctx.node("Greater", [y, ctx.const(0.0, np.float32)])
    return [mask, ctx.node("Where", [mask.output[0], dy, ctx.const(0.0, np.float32)], [node.output[0]])]


# -- build (export environment) ----------------------------------------------------------------

def _save_shared(models: dict, out: Path) -> None:
    """Save graphs beside one weights file (as a bundle does): initializers equal to the first
    model's large ones point into ``weights.bin``."""
    import onnx
    from onnx import numpy_helper
    out.mkdir(parents=True, exist_ok=True)
    first = copy.deepcopy(next(iter(models.values())))
    values = {i.name: numpy_helper.to_array(i).tobytes() for i in first.graph.initializer}
    onnx.save_model(first, out / "_weights_holder.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=1024)
    refs = {i.name: i for i in first.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL}
    for name, model in models.items():
        for k, init in enumerate(model.graph.initializer):
            ref = refs.get(init.name)
            if ref is not None and numpy_helper.to_array(init).tobytes() == values[init.name]:
                model.graph.initializer[k].CopyFrom(ref)
        (out / f"{name}.onnx").write_bytes(model.SerializeToString())


def build(size: int) -> None:
    import onnx

    from ortviz.bundle import graphs as O
    from ortviz.export import lowering as L
    from ortviz.export.canonical import canonicalize
    from ortviz.export.frontends import from_torch
    from ortviz.export.gradients import build as build_grad
    from ortviz.export.graph import static_shapes
    from ortviz.export.layers import select_layers
    from ortviz.export.zoo import efficientnet_lite0

    sys.path.insert(0, str(common.ROOT / "tests"))
    from nets import small_resnet

    variants = _variants()
    t0 = time.perf_counter()
    for model_name, net, graphs in (("lite0", efficientnet_lite0(), LITE0),
                                    ("small-resnet", small_resnet(), {"class-score@logits": ("class_score", "logits")})):
        canon, image, logits = canonicalize(from_torch(net, size), size, 1)
        shapes = static_shapes(canon)
        layers = {l.name: l for l in select_layers(canon, image, "default")}
        models = {"forward": copy.deepcopy(canon)}
        for gname, (objective, layer) in graphs.items():
            tensor, shape = (logits, shapes[logits]) if layer == "logits" else (layers[layer].tensor, layers[layer].shape)
            raw = build_grad(canon, image, O.graph_objective(getattr(O, objective.upper())), layer, tensor, shape, keep_raw=True).raw
            outs = ["loss", f"{image}_grad"]
            if model_name == "lite0":
                for vname, speedups in variants.items():
                    models[f"{gname}__{vname}"] = L.lower(copy.deepcopy(raw), outs, speedups)
            else:
                rules = dict(L.RULES)
                try:
                    L.RULES["ReluGrad"] = _relu_where
                    models[f"{gname}__relu-where"] = L.lower(copy.deepcopy(raw), outs)
                finally:
                    L.RULES.clear()
                    L.RULES.update(rules)
                models[f"{gname}__relu-cast-mul"] = L.lower(copy.deepcopy(raw), outs)
        shutil.rmtree(OUT / f"{model_name}-{size}", ignore_errors=True)  # no graphs of dropped variants
        _save_shared(models, OUT / f"{model_name}-{size}")
        print(f"{model_name}: {len(models)} graphs in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    (OUT / f"built-{size}.json").write_text(json.dumps({"onnx": onnx.__version__, "variants": ORDER}) + "\n")


# -- time (runtime environment) ----------------------------------------------------------------

def ort_ops(path: Path) -> dict:
    """What ONNX Runtime makes of a graph at ORT_ENABLE_ALL: counts of the ops that matter here
    (weight transforms left unfolded, layout reorders, convolutions)."""
    import collections
    import tempfile

    import onnx
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "opt.bin")
        so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        model = onnx.load(str(Path(tmp) / "opt.onnx"), load_external_data=False)
    c = collections.Counter(n.op_type for n in model.graph.node)
    keep = ("Transpose", "Slice", "Reshape", "ReorderInput", "ReorderOutput", "Conv", "ConvTranspose")
    return {k: c.get(k, 0) for k in keep}


def time_all(size: int, reps: int, warmup: int, threads: list[int], only=None) -> dict:
    import statistics

    import numpy as np
    import onnxruntime as ort

    rec = {"machine": common.machine(), "onnxruntime": ort.__version__, "size": size, "reps": reps,
           "warmup": warmup, "threads": {}}
    for nt in threads:
        res = {}
        for model_dir in sorted(OUT.glob(f"*-{size}")):
            so = ort.SessionOptions()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = nt, 1, 3
            paths = sorted(p for p in model_dir.glob("*.onnx") if not p.name.startswith("_")
                           and (not only or p.stem == "forward"
                               or p.stem.split("__")[-1] in {*only, "before", "relu-where"}))
            sess = {p.stem: ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]) for p in paths}
            rng = np.random.default_rng(0)
            x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
            feeds = {}
            for k, s in sess.items():
                f = {}
                for i in s.get_inputs():
                    f[i.name] = x if i.name == "image" else np.random.default_rng(1).standard_normal(i.shape).astype(np.float32)
                feeds[k] = f
            outs = {k: s.run(None, feeds[k]) for k, s in sess.items()}
            ops = {k: ort_ops(p) for k, p in zip(sess, paths)} if nt == threads[0] else {}
            samples = {k: [] for k in sess}
            order = list(sess.items())
            for r in range(warmup + reps):
                random.Random(r).shuffle(order)  # no graph always runs after the same one
                for k, s in order:
                    time.sleep(0.005)
                    t = time.perf_counter()
                    s.run(None, feeds[k])
                    if r >= warmup:
                        samples[k].append((time.perf_counter() - t) * 1e3)
            for k in sess:
                g, v = (k.split("__") + [""])[:2]
                base = f"{g}__{'relu-where' if v.startswith('relu') else 'before'}"
                entry = {"median": statistics.median(samples[k]), "min": min(samples[k]),
                         "max": max(samples[k]), "samples_ms": samples[k]}
                if k in ops:
                    entry["ort_ops"] = ops[k]
                if k != "forward":
                    ref = outs[base][1]
                    entry["max_rel_err_vs_base"] = float(np.abs(outs[k][1] - ref).max() / np.abs(ref).max())
                    entry["vs_base"] = statistics.median(a / b for a, b in zip(samples[k], samples[base]))
                    entry["over_forward"] = statistics.median(
                        a / b for a, b in zip(samples[k], samples["forward"]))
                res[f"{model_dir.name}/{k}"] = entry
        rec["threads"][str(nt)] = res
    return rec


def _ops(rec: dict, key: str) -> str:
    o = next((r[key].get("ort_ops") for r in rec["threads"].values() if r[key].get("ort_ops")), None)
    if not o:
        return ""
    return (f"{o['Conv']} / {o['ConvTranspose']} / {o['ReorderInput'] + o['ReorderOutput']} / "
            f"{o['Transpose'] + o['Slice']}")


def markdown(rec: dict) -> str:
    m = rec["machine"]
    lines = [f"Measured {m['date']} on `{m['host']}` ({m['cpu']}, {m['cores']} cores, load average "
             f"{', '.join(f'{v:.1f}' for v in m['loadavg'])}), onnxruntime {rec['onnxruntime']}, "
             f"{rec['size']}×{rec['size']}, {rec['reps']} interleaved rounds after {rec['warmup']} "
             "warm-up; ms median (min–max); ratios are medians of per-round ratios.", ""]
    for nt, res in rec["threads"].items():
        lines += [f"**{nt} thread{'s' if nt != '1' else ''}**", "",
                  "| graph | variant | ms | ÷ before | ÷ forward | max rel. error vs before "
                  "| after ORT's optimizer: Conv / ConvTranspose / reorders / Transpose+Slice |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        def order(key):
            model, k = key.split("/")
            g, v = (k.split("__") + [""])[:2]
            return model, g == "forward", g, ORDER.index(v) if v in ORDER else -1

        for key in sorted(res, key=order):
            e = res[key]
            model, k = key.split("/")
            g, v = (k.split("__") + ["—"])[:2]
            v = f"**{v}** (shipped)" if v in SHIPPED else v
            lines.append(f"| {model} {g} | {v} | {e['median']:.1f} ({e['min']:.1f}–{e['max']:.1f}) | "
                         f"{e.get('vs_base', 1):.3f} | {e.get('over_forward', 1):.2f} | "
                         f"{e.get('max_rel_err_vs_base', 0):.1e} | {_ops(rec, key)} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", nargs="?", choices=["build", "time"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, default=common.SIZE)
    ap.add_argument("--reps", type=int)
    ap.add_argument("--threads", default="2,1", help="comma-separated (default 2,1)")
    ap.add_argument("--variants", help="comma-separated: time only these (and the forward)")
    ap.add_argument("--rt-python", default=str(common.ROOT / ".venv/bin/python"))
    ap.add_argument("--export-python", default=str(common.ROOT / ".venv-export/bin/python"))
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    reps = args.reps or (5 if args.quick else 25)
    if args.phase == "build":
        common.limit_threads()
        build(args.size)
    elif args.phase == "time":
        common.limit_threads()
        rec = time_all(args.size, reps, 2 if args.quick else 4, [int(t) for t in args.threads.split(",")],
                       args.variants.split(",") if args.variants else None)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"lowering-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}"
        (out / f"{stem}.json").write_text(json.dumps(rec, indent=1) + "\n")
        text = markdown(rec)
        (out / f"{stem}.md").write_text(text)
        print(text)
    else:
        built = OUT / f"built-{args.size}.json"
        if not built.exists() or json.loads(built.read_text()).get("variants") != ORDER:  # a build of other variants
            subprocess.run([args.export_python, __file__, "build", "--size", str(args.size)], check=True)
        cmd = [args.rt_python, __file__, "time", "--size", str(args.size), "--threads", args.threads,
               "--out", args.out] + (["--variants", args.variants] if args.variants else []) + (["--quick"] if args.quick else []) + (["--reps", str(args.reps)] if args.reps else [])
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
