// The page: controls, the live picture, the contract URL and the download.
//
// Contract (docs/browser.md): /?technique=deepdream|feature-viz&objective=EXPR&iterations=N&
// seed=S&run=1 runs N iterations without a click (&threads=T: WebAssembly threads); then document.body.dataset.status is "done"
// (or "error: ...") and window.ortvizResult = {objective: [one value per iteration],
// provider: "wasm"|"webgpu", ms_per_iteration}.

import { Engine, getJson, ort, pickBackend } from "./engine.js";
import { deepdream, featureViz } from "./loops.js";
import * as draw from "./draw.js";

const $ = (id) => document.getElementById(id);
const TECHNIQUES = ["feature-viz", "deepdream"];
const MAX_ITERATIONS = 10000;
const state = { engine: null, info: null, photo: null, photoName: "photo.png", running: false, stop: false, last: null };

function setStatus(status) { document.body.dataset.status = status; }

function fail(err) {
  const line = String(err && err.message ? err.message : err).split("\n")[0];
  $("message").textContent = line;
  $("message").className = "error";
  setStatus(`error: ${line}`);
  state.running = false;
  $("run").disabled = false;
  $("stop").disabled = true;
}

function message(text) { $("message").textContent = text; $("message").className = ""; }

// model-space (n, 3, h, w) -> the canvas (the first image), as imaging.from_model
function show(x, shape) {
  const [, , h, w] = shape, info = state.info, cv = $("picture");
  if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; }
  const ctx = cv.getContext("2d"), img = ctx.createImageData(w, h), p = h * w;
  for (let i = 0; i < p; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round(x[c * p + i] * info.std[c] + info.mean[c]);
      img.data[4 * i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// a decoded image -> model space at the model's input size: the centre crop of the model's
// aspect, resized (the page works at one octave of the model's size)
async function toModel(bitmap) {
  const [, , h, w] = state.info.input.shape;
  const cv = new OffscreenCanvas(w, h), ctx = cv.getContext("2d");
  const k = Math.min(bitmap.width / w, bitmap.height / h), sw = w * k, sh = h * k;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, (bitmap.width - sw) / 2, (bitmap.height - sh) / 2, sw, sh, 0, 0, w, h);
  const d = ctx.getImageData(0, 0, w, h).data, p = h * w, x = new Float32Array(3 * p);
  for (let i = 0; i < p; i++) for (let c = 0; c < 3; c++) x[c * p + i] = (d[4 * i + c] - state.info.mean[c]) / state.info.std[c];
  return x;
}

async function loadPhoto(blob, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch (e) {
    throw new Error(`${name} is not an image this browser can decode`);
  }
  if (bitmap.width < 8 || bitmap.height < 8) throw new Error(`${name} is ${bitmap.width}x${bitmap.height}: at least 8x8 pixels`);
  state.photo = await toModel(bitmap);
  state.photoName = name;
}

function params() {
  const q = new URLSearchParams(location.search);
  const technique = q.get("technique") || "feature-viz";
  if (!TECHNIQUES.includes(technique)) throw new Error(`technique must be one of ${TECHNIQUES.join(", ")}, not ${technique}`);
  const defaults = technique === "deepdream" ? state.info.deepdream : state.info.feature_viz;
  const num = (name, dflt) => {
    const v = q.get(name);
    if (v === null || v === "") return dflt;
    if (!/^\d+$/.test(v)) throw new Error(`${name} must be a whole number, not ${v}`);
    return Number(v);
  };
  const iterations = num("iterations", defaults.iterations);
  if (iterations < 1 || iterations > MAX_ITERATIONS) throw new Error(`iterations must be 1..${MAX_ITERATIONS}, not ${iterations}`);
  const objective = q.get("objective") ?? (technique === "deepdream" ? "" : defaults.objective);
  const threads = num("threads", null);
  if (threads !== null && (threads < 1 || threads > 16)) throw new Error(`threads must be 1..16, not ${threads}`);
  return { technique, objective, iterations, seed: num("seed", 0), run: q.get("run") === "1", backend: q.get("backend"), threads };
}

function readForm() {
  const technique = document.querySelector("input[name=technique]:checked").value;
  const iterations = Number($("iterations").value);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new Error(`iterations must be 1..${MAX_ITERATIONS}`);
  const seed = Number($("seed").value);
  if (!Number.isInteger(seed) || seed < 0) throw new Error("seed must be a whole number");
  return { technique, objective: $("objective").value, iterations, seed };
}

async function run(p) {
  if (state.running) return;
  state.running = true;
  state.stop = false;
  $("run").disabled = true;
  $("stop").disabled = false;
  $("download").disabled = true;
  setStatus("running");
  const dream = p.technique === "deepdream";
  const text = p.objective.trim() === "" && dream ? state.info.deepdream.layer : p.objective;
  message("parsing the objective…");
  const objective = await state.engine.objective(text);
  message(`loading the graphs (${objective.runs.map((r) => r.file).join(", ")})…`);
  if (dream && state.photo === null) await loadPhoto(await (await fetch(state.info.deepdream.photo)).blob(), "photo.png");
  const values = [], times = [];
  const began = performance.now();
  const report = (t, value, x, shape, ms) => {
    values.push(value);
    times.push(ms);
    show(x, shape);
    const its = 1000 * t / (performance.now() - began);
    $("progress").textContent = `${p.technique} ${objective.text}: iteration ${t}/${p.iterations}, objective ${value.toFixed(4)}, ${its.toFixed(2)} it/s, ${state.engine.backend}`;
  };
  message("running…");
  const stop = () => state.stop;
  if (dream) await deepdream(state.engine, objective, state.photo, p.iterations, p.seed, report, stop);
  else await featureViz(state.engine, objective, p.iterations, p.seed, report, stop);
  const sorted = [...times].sort((a, b) => a - b);
  const ms = sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
  state.last = { technique: p.technique, objective: objective.text, iterations: values.length, seed: p.seed, values, ms, photo: dream ? state.photoName : null };
  window.ortvizResult = { objective: values, provider: state.engine.backend, ms_per_iteration: ms, threads: state.engine.threads,
                          technique: p.technique, text: objective.text, iterations: values.length, seed: p.seed };
  message(state.stop ? `stopped after ${values.length} iterations` : `done: ${values.length} iterations, median ${ms?.toFixed(1)} ms each`);
  if (values.length && values.every((v) => v === 0))
    message(`${$("message").textContent}; the objective stayed 0: a unit that is off everywhere gives no gradient (the CLI's --warm-up is not in the page)`);
  state.running = false;
  $("run").disabled = false;
  $("stop").disabled = true;
  $("download").disabled = false;
  setStatus("done");
}

function download() {
  const r = state.last, info = state.info;
  const stem = `${r.technique}-${r.objective.replace(/[^A-Za-z0-9_.-]+/g, "_")}`.slice(0, 80);
  const sidecar = {
    technique: r.technique === "deepdream" ? "deepdream" : "feature-visualization",
    params: { objective: r.objective, iterations: r.iterations, seed: r.seed,
              ...(r.technique === "deepdream" ? { lr: info.deepdream.lr, jitter: info.deepdream.jitter, param: "pixel", octaves: 1, photo: r.photo }
                : { param: "fft", transforms: "standard", lr: info.feature_viz.lr }) },
    model: { name: info.name, bundle_id: info.bundle_id },
    runtime: { engine: "onnxruntime-web", provider: state.engine.backend, threads: state.engine.threads, ms_per_iteration: r.ms },
    objective_values: r.values,
    made_by: "ortviz serve (the browser page)",
  };
  const save = (blob, name) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  $("picture").toBlob((png) => save(png, `${stem}.png`), "image/png");
  save(new Blob([JSON.stringify(sidecar, null, 1)], { type: "application/json" }), `${stem}.png.json`);
}

async function main() {
  window.addEventListener("unhandledrejection", (e) => fail(e.reason));
  state.info = await getJson("api/bundle", "the bundle's description");
  const info = state.info;
  $("model").textContent = `${info.name}, input ${info.input.shape.join("×")}`;
  if (info.atlas) $("model").insertAdjacentHTML("beforeend", ' · <a href="atlas/">atlas</a>');
  $("layers").textContent = "layers: " + info.layers.map((l) => l.channels ? `${l.name} (${l.channels})` : l.name).join(", ");
  const p = params();
  state.engine = new Engine(info, pickBackend(p.backend), p.threads);
  $("backend").textContent = state.engine.backend;
  document.querySelector(`input[name=technique][value=${p.technique}]`).checked = true;
  $("objective").value = p.objective;
  $("iterations").value = p.iterations;
  $("seed").value = p.seed;
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); Promise.resolve().then(() => run(readForm())).catch(fail); });
  $("stop").addEventListener("click", () => { state.stop = true; });
  $("download").addEventListener("click", download);
  const take = (file) => file && loadPhoto(file, file.name).then(() => message(`photo: ${file.name}`)).catch(fail);
  $("photo").addEventListener("change", (e) => take(e.target.files[0]));
  document.body.addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
  document.body.addEventListener("drop", (e) => { e.preventDefault(); $("drop").classList.remove("over"); take(e.dataTransfer.files[0]); });
  // for the tests and scripts: the page's pieces
  window.ortvizApi = { engine: state.engine, draw, loadPhoto, ort };
  if (p.run) await run(p);
  else { setStatus("ready"); message("ready"); }
}

main().catch(fail);
