"""Fetch the inversion benchmark's second tuning set from Debian's wallpaper packages.

Ten photos, GPL-2+ (``mate-backgrounds``) and LGPL-3 (``plasma-workspace-wallpapers``), so they are
not shipped here: this downloads the two packages with ``apt-get download`` (Debian's registry,
no install), unpacks them with ``dpkg-deb`` and writes each photo scaled to a longest side of
512 px (JPEG, quality 92) into ``--out``. They were picked on 2026-12-06 from every photo in six
Debian wallpaper packages as those whose 224-px centre crop all three EfficientNet-Lite networks
(0, 1, 2) give the same top-1, leaving out drawings and renders; ``bench/photos/README.md`` says
how the shipped ones (the other six picked that day) are used. Then, for example::

    .venv/bin/python bench/debian_photos.py --out build/photos-tuning
    .venv-export/bin/python bench/inversion.py --photos "$(ls build/photos-tuning/*.jpg | paste -sd,)"
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers")
MATE = "usr/share/backgrounds/mate/nature"
PLASMA = "usr/share/wallpapers"
# name written: (package, path inside it, the three networks' shared top-1 on 2026-12-06)
PHOTOS = {
    "dune": (PACKAGES[0], f"{MATE}/Dune.jpg", "ear"),
    "drop": (PACKAGES[0], f"{MATE}/Aqua.jpg", "bubble"),
    "storm": (PACKAGES[0], f"{MATE}/Storm.jpg", "wing"),
    "leaf": (PACKAGES[0], f"{MATE}/Blinds.jpg", "ladybug"),
    "orangeflower": (PACKAGES[0], f"{MATE}/FreshFlower.jpg", "daisy"),
    "ladybird": (PACKAGES[0], f"{MATE}/LadyBird.jpg", "ladybug"),
    "yellowflower": (PACKAGES[0], f"{MATE}/YellowFlower.jpg", "daisy"),
    "cups": (PACKAGES[1], f"{PLASMA}/ColorfulCups/contents/images/2560x1600.jpg", "cup"),
    "boats": (PACKAGES[1], f"{PLASMA}/EveningGlow/contents/images/2560x1600.jpg", "canoe"),
    "kite": (PACKAGES[1], f"{PLASMA}/Kite/contents/images/2560x1600.jpg", "parachute"),
}
LONGEST = 512


def fetch(out: Path) -> list[Path]:
    """Download, unpack and scale; returns the photos written."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"debian_photos: needs {tool} (a Debian or Ubuntu machine)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, capture_output=True, text=True)
        if got.returncode:
            last = (got.stderr.strip().splitlines() or ["no message"])[-1]
            raise SystemExit(f"debian_photos: apt-get download failed ({last}); run apt-get update first?")
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        for name, (package, inside, _) in PHOTOS.items():
            src = Path(tmp) / "x" / inside
            if not src.is_file():
                raise SystemExit(f"debian_photos: {package} has no {inside} in the version this "
                                 "machine's apt offers (the list was made with Debian 12's)")
            im = Image.open(src).convert("RGB")
            im.thumbnail((LONGEST, LONGEST), Image.Resampling.LANCZOS)
            dest = out / f"{name}.jpg"
            im.save(dest, quality=92)
            written.append(dest)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/photos-tuning"))
    args = ap.parse_args(argv)
    for p in fetch(args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
