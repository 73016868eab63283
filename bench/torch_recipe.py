"""The default class-visualization recipe written in PyTorch the Lucent way, for the ratio of
bench/iteration.py: a 1/f Fourier spectrum (``torch.fft.irfft2``, the same scale), the same
decorrelated colour and sigmoid, the standard transforms (pad 12 with the mean grey, crop 8,
scale 0.9..1.1, rotate -10..10 degrees by ``affine_grid``/``grid_sample``, crop 4, resize to
224), Adam 0.05 on the spectrum, the class score of the same EfficientNet-Lite0, autograd
through all of it. Rows, interleaved in shuffled rounds, medians:

- ``torch.grad``: the input gradient of the class score alone (PyTorch eager);
- ``torch.iter``: one whole iteration of the recipe.

Export environment (torch); never a runtime dependency:

    PYTHONPATH=. .venv-export/bin/python bench/torch_recipe.py [--threads 2] [--rounds 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SCALES = [round(1 + (i - 5) * 0.02, 2) for i in range(11)]
ANGLES = list(range(-10, 11)) + [0] * 5
TARGET = 130   # flamingo, as bench/iteration.py


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    common.limit_threads(args.threads)
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ortviz.bundle.embedded import default_bundle
    from ortviz.bundle.reader import Bundle
    from ortviz.export.zoo import efficientnet_lite0
    from ortviz.render import modelspace
    from ortviz.render.param import colour_sqrt
    from ortviz.render.param.fourier import Fourier
    torch.set_num_threads(args.threads)
    net = efficientnet_lite0().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    pre = Bundle.open(default_bundle()).manifest["preprocessing"]
    low, high = (torch.tensor(np.asarray(v, np.float32)).reshape(1, 3, 1, 1)
                 for v in modelspace.valid_range(pre["mean"], pre["std"]))
    grey = ((127.5 - torch.tensor(pre["mean"])) / torch.tensor(pre["std"])).reshape(1, 3, 1, 1).float()
    h = w = common.SIZE
    scale = torch.tensor(Fourier((1, 3, h, w)).scale)
    c = torch.tensor(colour_sqrt(), dtype=torch.float32)
    spectrum = (0.01 * torch.randn(1, 3, h, w // 2 + 1, 2, generator=torch.Generator().manual_seed(1))
                ).requires_grad_()
    opt = torch.optim.Adam([spectrum], lr=0.05)
    rng = np.random.default_rng(2)

    def image():
        u = torch.fft.irfft2(torch.complex(spectrum[..., 0], spectrum[..., 1]) * scale, s=(h, w),
                             norm="ortho")
        return low + (high - low) * torch.sigmoid(torch.einsum("ij,njhw->nihw", c, u))

    def transforms(x):
        x = F.pad(x - grey, (12, 12, 12, 12)) + grey
        oy, ox = rng.integers(0, 9, 2)
        x = x[..., oy:oy + x.shape[2] - 8, ox:ox + x.shape[3] - 8]
        s = SCALES[rng.integers(len(SCALES))]
        x = F.interpolate(x, size=(round(x.shape[2] * s),) * 2, mode="bilinear", align_corners=False)
        a = math.radians(ANGLES[rng.integers(len(ANGLES))])
        theta = torch.tensor([[[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]])
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x - grey, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + grey
        oy, ox = rng.integers(0, 5, 2)
        x = x[..., oy:oy + x.shape[2] - 4, ox:ox + x.shape[3] - 4]
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)

    def iteration():
        opt.zero_grad()
        loss = -net(transforms(image()))[0, TARGET]
        loss.backward()
        opt.step()

    x0 = torch.zeros(1, 3, h, w)

    def grad():
        x = x0.clone().requires_grad_()
        net(x)[0, TARGET].backward()

    calls = {"torch.grad": grad, "torch.iter": iteration}
    times = common.interleaved(list(calls.values()), args.rounds, args.warmup)
    med = {k: 1e3 * float(np.median(times[id(f)])) for k, f in calls.items()}
    machine = common.machine()
    load = ", ".join(f"{v:.1f}" for v in machine["loadavg"] or [])
    print(f"{machine['cpu']}, torch {torch.__version__}, {args.threads} threads, {args.rounds} "
          f"interleaved rounds, medians; load average {load}")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} |")
    common.save(args.out, {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine,
                           "torch": torch.__version__, "threads": args.threads, "rounds": args.rounds,
                           "ms": {k: round(v, 2) for k, v in med.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
