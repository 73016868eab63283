// The random transforms of a feature-visualization step, drawn in the page, and the warp
// graphs' inputs made from a draw: the same rules as ortviz/render/transforms.py (sample),
// ortviz/render/warp.py (_matrix_1d, _General) and ortviz/render/stepgraph/plans.py (feeds), checked
// against them on the same draws (tests/runtime/test_serve_browser.py).

// -- a seeded generator (the page's own: not numpy's, so the same seed gives another draw) --
export function makeRng(seed) {
  // sfc32 seeded by splitmix32 of the seed
  let s = (Number(seed) >>> 0) || 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  let spare = null;
  return {
    random: next,
    // an integer in lo..hi-1, as numpy's integers(lo, hi)
    integers(lo, hi) { return lo + Math.floor(next() * (hi - lo)); },
    normal() {
      if (spare !== null) { const v = spare; spare = null; return v; }
      let u = 0;
      while (u === 0) u = next();
      const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * next();
      spare = r * Math.sin(th);
      return r * Math.cos(th);
    },
  };
}

// -- 3x3 maps (output pixel -> input pixel), as ortviz/render/transforms.py --------------------------
const mul = (p, q) => {
  const r = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += p[i][k] * q[k][j];
    r[i][j] = s;
  }
  return r;
};
const translate = (dy, dx) => [[1, 0, dy], [0, 1, dx], [0, 0, 1]];
const resizeMap = (inHw, outHw) => {
  const sy = inHw[0] / outHw[0], sx = inHw[1] / outHw[1];
  return [[sy, 0, 0.5 * sy - 0.5], [0, sx, 0.5 * sx - 0.5], [0, 0, 1]];
};
const aboutCentre = (hw, angle) => {
  const c = Math.cos(angle), s = Math.sin(angle), cy = (hw[0] - 1) / 2, cx = (hw[1] - 1) / 2;
  return mul(mul(translate(cy, cx), [[c, -s, 0], [s, c, 0], [0, 0, 1]]), translate(-cy, -cx));
};
// Python's round(): halves to even
export function pyRound(v) {
  const f = Math.floor(v), d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
const round9 = (v) => Math.round(v * 1e9) / 1e9;

// One transform's draw: [map, size], consuming rng as ortviz/render/transforms.py does.
function step(t, rng, hw) {
  switch (t.type) {
    case "pad":
      return [translate(-t.size, -t.size), [hw[0] + 2 * t.size, hw[1] + 2 * t.size]];
    case "crop": {
      const oy = rng.integers(0, t.d + 1), ox = rng.integers(0, t.d + 1);
      return [translate(oy, ox), [Math.max(1, hw[0] - t.d), Math.max(1, hw[1] - t.d)]];
    }
    case "scale": {
      const s = t.scales[rng.integers(0, t.scales.length)];
      const out = [Math.max(1, pyRound(hw[0] * s)), Math.max(1, pyRound(hw[1] * s))];
      return [resizeMap(hw, out), out];
    }
    case "rotate": {
      const a = t.angles[rng.integers(0, t.angles.length)] * Math.PI / 180;
      return [aboutCentre(hw, a), hw];
    }
    case "jitter": {
      const oy = rng.integers(-t.d, t.d + 1), ox = rng.integers(-t.d, t.d + 1);
      return [translate(-oy, -ox), hw];
    }
    default:
      throw new Error(`no draw for the transform ${t.type}`);
  }
}

// The composed map of a draw, split as transforms.sample splits it: an axis-aligned map and
// at most one rotation about the output's centre. {axis: map, rotation: map|null}
export function sample(transforms, rng, inHw, outHw) {
  let m = [[1, 0, 0], [0, 1, 0], [0, 0, 1]], hw = [inHw[0], inHw[1]];
  for (const t of transforms) {
    const [s, h] = step(t, rng, hw);
    m = mul(m, s);
    hw = h;
  }
  if (hw[0] !== outHw[0] || hw[1] !== outHw[1]) {
    m = mul(m, resizeMap(hw, outHw));
    hw = [outHw[0], outHw[1]];
  }
  const angle = round9(Math.atan2(m[1][0], m[1][1]));
  if (angle === 0) return { axis: m, rotation: null };
  const r = aboutCentre(hw, angle);
  const b = mul(m, invert(r));
  if (Math.abs(b[0][1]) > 1e-9 * Math.abs(b[0][0]) || Math.abs(b[1][0]) > 1e-9 * Math.abs(b[1][1]))
    throw new Error("a draw that is not an axis-aligned map and a rotation");
  b[0][1] = b[1][0] = 0;
  return { axis: b, rotation: r };
}

function invert(r) {   // a rotation about a point: [[R, t], [0, 1]] -> [[R', -R' t], [0, 1]]
  const a = r[0][0], b = r[0][1], c = r[1][0], d = r[1][1], det = a * d - b * c;
  const i = [[d / det, -b / det], [-c / det, a / det]];
  return [[i[0][0], i[0][1], -(i[0][0] * r[0][2] + i[0][1] * r[1][2])],
          [i[1][0], i[1][1], -(i[1][0] * r[0][2] + i[1][1] * r[1][2])], [0, 0, 1]];
}

// -- the sampling plans, as ortviz/render/warp.py ----------------------------------------------------
function fold(i, n, mode) {   // [index, valid]
  if (mode === "edge") return [Math.min(Math.max(i, 0), n - 1), true];
  if (mode === "wrap") return [((i % n) + n) % n, true];
  if (mode === "reflect") {
    if (n === 1) return [0, true];
    const period = 2 * (n - 1), j = ((i % period) + period) % period;
    return [j >= n ? period - j : j, true];
  }
  return [Math.min(Math.max(i, 0), n - 1), i >= 0 && i < n];
}

function taps(coord, n, mode) {   // two [index, weight] pairs
  const i0 = Math.floor(coord), f = coord - i0;
  const out = [];
  for (const [i, w] of [[i0, 1 - f], [i0 + 1, f]]) {
    const [j, valid] = fold(i, n, mode);
    out.push([j, valid ? w : 0]);
  }
  return out;
}

// (nOut, nIn) row-major float32: output k reads input scale * k + offset (warp._matrix_1d)
function matrix1d(nIn, nOut, scale, offset, mode) {
  const m = new Float64Array(nOut * nIn);
  for (let k = 0; k < nOut; k++)
    for (const [j, w] of taps(scale * k + offset, nIn, mode)) m[k * nIn + j] += w;
  return Float32Array.from(m);
}

// ry (oh, h), rxt (w, ow), sfill (oh, ow): plans.separable
export function separable(a, inHw, outHw, mode) {
  const [h, w] = inHw, [oh, ow] = outHw;
  const ry = matrix1d(h, oh, a[0][0], a[0][2], mode);
  const rx = matrix1d(w, ow, a[1][1], a[1][2], mode);
  const rxt = new Float32Array(w * ow);
  for (let i = 0; i < ow; i++) for (let j = 0; j < w; j++) rxt[j * ow + i] = rx[i * w + j];
  const rs = new Float32Array(oh), cs = new Float32Array(ow);
  for (let i = 0; i < oh; i++) { let s = 0; for (let j = 0; j < h; j++) s = Math.fround(s + ry[i * h + j]); rs[i] = s; }
  for (let i = 0; i < ow; i++) { let s = 0; for (let j = 0; j < w; j++) s = Math.fround(s + rx[i * w + j]); cs[i] = s; }
  const sfill = new Float32Array(oh * ow);
  for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) sfill[i * ow + j] = 1 - Math.fround(rs[i] * cs[j]);
  return { ry, rxt, sfill };
}

// the four taps of a same-size general warp (warp._General): idx (4, p) int, w (4, p) float32
function general(a, hw, mode) {
  const [h, w] = hw, p = h * w;
  const idx = new Int32Array(4 * p), wt = new Float32Array(4 * p);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    const o = i * w + j;
    const ty = taps(a[0][0] * i + a[0][1] * j + a[0][2], h, mode);
    const tx = taps(a[1][0] * i + a[1][1] * j + a[1][2], w, mode);
    let t = 0;
    for (const [iy, wy] of ty) for (const [ix, wx] of tx) {
      idx[t * p + o] = iy * w + ix;
      wt[t * p + o] = wy * wx;
      t++;
    }
  }
  return { idx, wt };
}

// plans.transposed_taps: for each input pixel, the outputs that read it (zero weights dropped,
// in the order of the flattened taps), padded with weight 0 at index 0. {tidx, tw, k}
export function transposedTaps(idx, wt, nTaps, p) {
  const count = new Int32Array(p);
  for (let f = 0; f < nTaps * p; f++) if (wt[f] !== 0) count[idx[f]]++;
  let k = 1;
  for (let i = 0; i < p; i++) if (count[i] > k) k = count[i];
  const tidx = new Int32Array(k * p), tw = new Float32Array(k * p);
  count.fill(0);
  for (let f = 0; f < nTaps * p; f++) {
    const w = wt[f];
    if (w === 0) continue;
    const src = idx[f], slot = count[src]++;
    tidx[slot * p + src] = f % p;
    tw[slot * p + src] = w;
  }
  return { tidx, tw, k };
}

const repeatRows = (a, rows) => {   // the graphs' int64 indices, the same row per image channel
  const out = new BigInt64Array(rows * a.length);
  for (let r = 0; r < rows; r++) for (let i = 0; i < a.length; i++) out[r * a.length + i] = BigInt(a[i]);
  return out;
};

function rotationTaps(a, hw, mode, rows) {
  const p = hw[0] * hw[1];
  const { idx, wt } = general(a, hw, mode);
  const { tidx, tw, k } = transposedTaps(idx, wt, 4, p);
  const rfill = new Float32Array(p);
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let t = 0; t < 4; t++) s = Math.fround(s + wt[t * p + j]);
    rfill[j] = 1 - s;
  }
  return { ridx: repeatRows(idx, rows), rw: wt, rfill, tidx: repeatRows(tidx, rows), tw, k };
}

function identityTaps(p, rows) {
  const idx = new Int32Array(4 * p), wt = new Float32Array(4 * p);
  for (let j = 0; j < p; j++) { idx[j] = j; wt[j] = 1; }
  return { ridx: repeatRows(idx, rows), rw: wt, rfill: new Float32Array(p),
           tidx: repeatRows(idx.subarray(0, p), rows), tw: wt.slice(0, p), k: 1 };
}

// The warp graphs' inputs for a drawn map (plans.feeds), as plain typed arrays with shapes.
const rotationCache = new Map();
export function feeds(draw, inHw, view, mode, n) {
  const rows = 3 * n, p = view[0] * view[1];
  const sep = separable(draw.axis, inHw, view, mode);
  let tp;
  if (draw.rotation === null) {
    const key = `id:${p}:${rows}`;
    tp = rotationCache.get(key) || identityTaps(p, rows);
    rotationCache.set(key, tp);
  } else {
    const key = `${view}:${draw.rotation.flat().map(round9).join(",")}:${mode}:${rows}`;
    tp = rotationCache.get(key);
    if (!tp) {
      tp = rotationTaps(draw.rotation, view, mode, rows);
      if (rotationCache.size > 64) rotationCache.delete(rotationCache.keys().next().value);
      rotationCache.set(key, tp);
    }
  }
  return {
    ry: [sep.ry, [view[0], inHw[0]]], rxt: [sep.rxt, [inHw[1], view[1]]], sfill: [sep.sfill, [view[0], view[1]]],
    ridx: [tp.ridx, [rows, 4 * p]], rw: [tp.rw, [4, p]], rfill: [tp.rfill, [p]],
    tidx: [tp.tidx, [rows, tp.k * p]], tw: [tp.tw, [tp.k, p]],
  };
}
