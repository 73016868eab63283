"""The benchmark's table on a GPU: ortviz on onnxruntime-gpu's CUDA execution provider against
PyTorch CUDA eager. Not run yet (no GPU was available when it was written): see
docs/benchmarks.md.

    python bench/gpu.py [--ort-python PY] [--torch-python PY] [--reps N]

Needs an environment with onnxruntime-gpu (CUDA provider working) and ortviz, and one with a
CUDA build of torch and the Lite0 packages; one environment can hold both, e.g.
    python3.11 -m venv .venv-gpu && .venv-gpu/bin/pip install -e ".[gpu,torch,lite0]"
(both default to the python running this script). The same rows as bench/run.py: the ortviz
rows' bare graph runs go through IO binding with inputs and outputs in device buffers made
once (nothing crosses the bus per call); the engine rows and the technique iterations use the
engine as a user gets it (its IO binding path; the regularizers run in numpy on the host, so
the image crosses the bus each iteration); the torch rows keep everything on the GPU and wait
for it with torch.cuda.synchronize. Sized to finish in under 5 minutes: 20 rounds after 5
warm-up, torch.compile only if it compiles within 90 s, no memory rows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

PRE_ORT = ("import onnxruntime as o, sys; p = o.get_available_providers(); print(o.__version__, p); "
           "sys.exit(0 if 'CUDAExecutionProvider' in p else 3)")
PRE_TORCH = ("import torch, sys; print(torch.__version__, torch.cuda.is_available() and "
             "torch.cuda.get_device_name()); sys.exit(0 if torch.cuda.is_available() else 3)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ort-python", default=sys.executable)
    ap.add_argument("--torch-python", default=sys.executable)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile-limit", type=float, default=90.0)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # cpu: dry run of the code paths
    args = ap.parse_args()
    if args.device != "cpu":
        for py, code, what in ((args.ort_python, PRE_ORT, "onnxruntime-gpu with the CUDA provider"),
                               (args.torch_python, PRE_TORCH, "torch with CUDA")):
            r = subprocess.run([py, "-c", code], capture_output=True, text=True)
            print(r.stdout.strip() or r.stderr.strip().splitlines()[-1:], file=sys.stderr)
            if r.returncode != 0:
                sys.exit(f"{py}: needs {what}")
    argv = ["--device", args.device, "--iobinding", "--reps", str(args.reps), "--warmup", str(args.warmup),
            "--rt-python", args.ort_python, "--torch-python", args.torch_python,
            "--compile-limit", str(args.compile_limit), "--no-rss"]
    run.main(argv + (["--no-compile"] if args.no_compile else []))


if __name__ == "__main__":
    main()
