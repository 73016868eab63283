// The two render loops of the page.
//
// Feature visualization is the CLI's default recipe on the step graphs (docs/step-graphs.md):
// the fft parameterization, Lucid's standard transforms drawn here (draw.js), Adam; one
// iteration is the `pre` graph (the drawn warp), the objective's gradient graphs and the
// `post` graph (the adjoints, Adam and the next image), the state fed back between runs.
//
// DeepDream is pixel-space ascent at the model's input size: a circular jitter, the
// objective's image gradient shifted back, a step of lr * g / mean|g|, a clip into the valid
// range (the CLI's pixel recipe without its octaves and tiling: docs/browser.md).

import { feeds, makeRng, sample } from "./draw.js";
import { ort } from "./engine.js";

const f32 = (data, shape) => new ort.Tensor("float32", data, shape);
const i64 = (data, shape) => new ort.Tensor("int64", data, shape);
const tensor = ([data, shape]) => (data instanceof BigInt64Array ? i64 : f32)(data, shape);

// report(t, value, image Float32Array) after each iteration; shouldStop() between them
export async function featureViz(engine, objective, iterations, seed, report, shouldStop) {
  const info = engine.info, fv = info.feature_viz;
  const [n, , h, w] = info.input.shape, hw = [h, w], view = [h, w];
  // one session at a time: onnxruntime-web's WebGPU EP refuses to create two at once
  const param = await engine.stepGraph("param"), pre = await engine.stepGraph("pre"), post = await engine.stepGraph("post");
  const preIn = new Set(pre.inputNames);
  for (const run of objective.runs) await engine.graph(run.file);   // sessions first: timed iterations after
  const rng = makeRng(seed);
  const size = fv.planar_shape.reduce((a, b) => a * b, 1);
  const q0 = new Float32Array(size);
  for (let i = 0; i < size; i++) q0[i] = fv.init_std * rng.normal();
  let q = f32(q0, fv.planar_shape), m = f32(new Float32Array(size), fv.planar_shape), v = f32(new Float32Array(size), fv.planar_shape);
  let { x, s } = await param.run({ q });
  const canvas = [n, 3, h, w];
  for (let t = 1; t <= iterations && !shouldStop(); t++) {
    const start = performance.now();
    const d = feeds(sample(fv.transforms, rng, hw, view), hw, view, fv.boundary, n);
    const pf = { x };
    for (const k of ["ry", "rxt", "sfill", "ridx", "rw", "rfill"]) if (preIn.has(k)) pf[k] = tensor(d[k]);
    const { view: seen } = await pre.run(pf);
    const { loss, grad } = await engine.gradient(objective, seen);
    const out = await post.run({
      gv: f32(grad, seen.dims), s, q, m, v,
      ry: tensor(d.ry), rxt: tensor(d.rxt), tidx: tensor(d.tidx), tw: tensor(d.tw),
      d1: f32(Float32Array.of(1 - fv.b1 ** t), [1]), d2: f32(Float32Array.of(1 - fv.b2 ** t), [1]),
    });
    ({ q2: q, m2: m, v2: v, x2: x, s2: s } = out);
    report(t, loss, x.data, canvas, performance.now() - start);
  }
  return x.data;
}

function roll(src, dst, c, h, w, oy, ox) {   // numpy.roll over the last two axes by (oy, ox)
  for (let k = 0; k < c; k++) {
    const base = k * h * w;
    for (let i = 0; i < h; i++) {
      const si = ((i - oy) % h + h) % h;
      for (let j = 0; j < w; j++) dst[base + i * w + j] = src[base + si * w + ((j - ox) % w + w) % w];
    }
  }
}

export async function deepdream(engine, objective, photo, iterations, seed, report, shouldStop) {
  const info = engine.info, dd = info.deepdream;
  const [n, c, h, w] = info.input.shape, shape = [n, c, h, w], hw = h * w;
  for (const run of objective.runs) await engine.graph(run.file);
  const rng = makeRng(seed);
  const x = new Float32Array(n * c * hw), xs = new Float32Array(x.length), g = new Float32Array(x.length);
  for (let b = 0; b < n; b++) x.set(photo, b * c * hw);   // every image of a batch starts from the photo
  for (let t = 1; t <= iterations && !shouldStop(); t++) {
    const start = performance.now();
    const oy = rng.integers(-dd.jitter, dd.jitter + 1), ox = rng.integers(-dd.jitter, dd.jitter + 1);
    roll(x, xs, n * c, h, w, oy, ox);
    const { loss, grad } = await engine.gradient(objective, f32(xs, shape));
    roll(grad, g, n * c, h, w, -oy, -ox);
    for (let b = 0; b < n; b++) {   // per image: steps of lr over the mean |g| (optim.normalized)
      const o = b * c * hw;
      let a = 0;
      for (let i = 0; i < c * hw; i++) a += Math.abs(g[o + i]);
      const k = dd.lr / (a / (c * hw) + 1e-8);
      for (let ch = 0; ch < c; ch++) {
        const lo = info.low[ch], hi = info.high[ch];
        for (let i = o + ch * hw; i < o + (ch + 1) * hw; i++) x[i] = Math.min(hi, Math.max(lo, x[i] + k * g[i]));
      }
    }
    report(t, loss, x, shape, performance.now() - start);
  }
  return x;
}
