// The bundle's graphs on onnxruntime-web: the page's engine. One weights file is fetched once
// and given to every session as its external data; the objective's feeds come from the server
// (the CLI's parser, ortviz/serve/feeds.py) and are run as the engine runs them: one gradient
// graph per layer read (and one for the classes), their losses and image gradients summed.

import * as ort from "./vendor/ort/ort.wasm.min.mjs";

export { ort };

async function fetchOk(url, what) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${what}: ${r.status} ${(await r.text()).trim()}`);
  return r;
}

export async function getJson(url, what) { return (await fetchOk(url, what)).json(); }
export async function getBytes(url, what) { return new Uint8Array(await (await fetchOk(url, what)).arrayBuffer()); }

export function pickBackend(asked) {
  if (asked && asked !== "wasm" && asked !== "webgpu") throw new Error(`backend must be wasm or webgpu, not ${asked}`);
  if (asked === "webgpu") throw new Error("this page's onnxruntime-web is the WebAssembly build (see the docs: WebGPU)");
  return "wasm";
}

export class Engine {
  // threads: WebAssembly threads, or null for onnxruntime-web's own choice (half the cores, at
  // most 4: on a loaded 2-core machine one thread measured faster than two, docs/browser.md)
  constructor(info, backend, threads = null) {
    this.info = info;
    this.backend = backend;
    this.sessions = new Map();
    this.weights = null;
    ort.env.wasm.wasmPaths = new URL("./vendor/ort/", import.meta.url).href;
    if (!self.crossOriginIsolated) ort.env.wasm.numThreads = 1;
    else if (threads !== null) ort.env.wasm.numThreads = threads;
    else ort.env.wasm.numThreads = Math.min(4, Math.ceil((navigator.hardwareConcurrency || 1) / 2));
    this.threads = ort.env.wasm.numThreads;
    ort.env.logLevel = "error";
  }

  // one external-data file per bundle (the manifest's weights): fetched once
  async externalData(file) {
    const entry = this.info.graphs.find((g) => g.file === file);
    if (!entry) throw new Error(`the bundle has no graph ${file}`);
    if (this.weights === null) {
      this.weights = await Promise.all(this.info.weights.map(async (path) => ({ path, data: await getBytes(`bundle/${path}`, path) })));
    }
    return this.weights;
  }

  async session(key, load) {
    let s = this.sessions.get(key);
    if (!s) {
      s = load().then(({ bytes, external }) => ort.InferenceSession.create(bytes, {
        executionProviders: [this.backend], graphOptimizationLevel: "all",
        ...(external ? { externalData: external } : {}),
      }));
      this.sessions.set(key, s);
    }
    return s;
  }

  graph(file) {
    return this.session(`bundle:${file}`, async () => ({
      bytes: await getBytes(`bundle/${file}`, file), external: await this.externalData(file),
    }));
  }

  stepGraph(name) {
    return this.session(`step:${name}`, async () => ({
      bytes: await getBytes(this.info.feature_viz.steps[name], `step graph ${name}`), external: null,
    }));
  }

  // POST the objective string; its feeds as Float32Arrays, or an Error with the parser's line
  async objective(text) {
    const r = await fetch("api/objective", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ objective: text }),
    });
    const answer = await r.json().catch(() => ({ error: `the server answered ${r.status}` }));
    if (!r.ok) throw new Error(answer.error || `the server answered ${r.status}`);
    const runs = answer.runs.map((run) => {
      const inputs = {};
      for (const [name, a] of Object.entries(run.inputs)) {
        const size = a.shape.reduce((x, y) => x * y, 1), data = new Float32Array(size);
        for (const [start, len, value] of a.runs) data.fill(value, start, start + len);
        inputs[name] = new ort.Tensor("float32", data, a.shape);
      }
      return { file: run.file, inputs };
    });
    return { text: answer.text, constant: answer.const, runs };
  }

  // x: an ort.Tensor of the model's input -> {loss, grad: Float32Array}
  async gradient(objective, x) {
    let loss = objective.constant, grad = null;
    for (const run of objective.runs) {
      const s = await this.graph(run.file);
      const entry = this.info.graphs.find((g) => g.file === run.file);
      const out = await s.run({ [this.info.input.name]: x, ...run.inputs });
      loss += Number(out[entry.outputs.loss].data[0]);
      const g = out[entry.outputs.grad].data;
      if (grad === null) grad = Float32Array.from(g);
      else for (let i = 0; i < g.length; i++) grad[i] += g[i];
    }
    return { loss, grad };
  }
}
