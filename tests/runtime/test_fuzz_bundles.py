"""A seeded fuzz of bundle and image files through the CLI (docs/reliability.md); split from
``test_reliability.py``. ``test_fuzz_more.py`` fuzzes side files and plugins.
"""

import io
import json
import os
import random
import shutil
import time
import traceback
from pathlib import Path

from PIL import Image
from test_reliability import GRAD, SMALL, no_temp_files, rehash

from ortviz.bundle.embedded import sample
from ortviz.cli import app

from probes import runner

# -- fuzz ------------------------------------------------------------------------------------

FUZZ_SEED = int(os.environ.get("ORTVIZ_FUZZ_SEED", 6))  # another seed explores further
FUZZ_CASES = int(os.environ.get("ORTVIZ_FUZZ_CASES", 300))


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))] if data else data


ODD_VALUES = [None, 0, -1, 1.5, True, "", "x", [], {}, [1], {"a": 1}, 10**12, 1e308, "../x"]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _json_mutation(text: str, rng: random.Random) -> str:
    """Delete a field, or give it a value of another type, anywhere in the manifest."""
    m = json.loads(text)
    path = rng.choice([p for p in _paths(m) if p])
    parent = m
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.3:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(ODD_VALUES)
    return json.dumps(m)


def _images(tmp_path: Path) -> dict[str, bytes]:
    png = sample().read_bytes()
    buf = io.BytesIO()
    with Image.open(sample()) as im:
        im.convert("RGB").resize((120, 80)).save(buf, "JPEG", quality=85)
    return {"png": png, "jpg": buf.getvalue()}


def _fuzz_case(k: int, rng: random.Random, tmp_path: Path, images: dict) -> tuple[str, list]:
    case = tmp_path / f"c{k}"
    case.mkdir()
    out = case / "out" / "o.png"
    common = ["--iterations", "1", "--octaves", "1", "--max-side", "64", "--provider", "cpu",
              "-o", str(out)]
    if rng.random() < 0.25:  # an image
        kind = rng.choice(sorted(images))
        how = rng.choice(["flip", "truncate"])
        data = (_flip if how == "flip" else _truncate)(images[kind], rng)
        img = case / f"in.{kind}"
        img.write_bytes(data)
        return f"{kind} {how}", ["dream", "--model", str(SMALL), "--layer", "layer1",
                                "--image", str(img), *common]
    b = case / "b"
    shutil.copytree(SMALL, b)
    names = sorted(p.name for p in b.iterdir())
    target = rng.choice(["manifest.json"] * 4 + ["forward.onnx", "weights.bin", GRAD,
                                                 "grad.logits__logits.onnx"] * 2 + names)
    data = (b / target).read_bytes()
    how = rng.choice(["flip", "truncate"] + (["json"] * 2 if target == "manifest.json" else []))
    if how == "json":
        (b / target).write_text(_json_mutation(data.decode(), rng))
    else:
        (b / target).write_bytes((_flip if how == "flip" else _truncate)(data, rng))
    fixed = ""
    if target != "manifest.json" and rng.random() < 0.7:
        rehash(b, target)  # a consistent manifest: the file's contents must be checked
        fixed = " +rehash"
    command = rng.choice([
        ["info", str(b)], ["layers", str(b)],
        ["dream", "--model", str(b), "--layer", "layer1", *common],
        ["dream", "--model", str(b), "--layer", "layer1", *common],
        ["class-viz", "--model", str(b), "--class", "3", *common[:-6], "--provider", "cpu",
         "-o", str(out)],
        ["invert", "--model", str(b), "--layer", "layer2", "--iterations", "1", "-o", str(out)],
    ])
    return f"{target} {how}{fixed}", command


def test_fuzzed_bundles_and_images_give_a_clean_error_or_a_valid_result(tmp_path):
    rng = random.Random(FUZZ_SEED)
    images = _images(tmp_path)
    outcomes = {0: 0, 1: 0, 2: 0}
    t0 = time.monotonic()
    for k in range(FUZZ_CASES):
        what, args = _fuzz_case(k, rng, tmp_path, images)
        where = f"seed {FUZZ_SEED} case {k}: {what}: ortviz {' '.join(args)}"
        r = runner.invoke(app, args)
        assert r.exception is None or isinstance(r.exception, SystemExit), (
            where + "\n" + "".join(traceback.format_exception(r.exception)))
        assert r.exit_code in outcomes, f"{where}: exit {r.exit_code}\n{r.output}"
        outcomes[r.exit_code] += 1
        if os.environ.get("ORTVIZ_FUZZ_LOG"):
            print(f"{k:4d} {r.exit_code} {what:45s} {args[0]:9s} {r.output.splitlines()[-1][:150] if r.output else ''}")
        out_dir = tmp_path / f"c{k}" / "out"
        out = out_dir / "o.png"
        if r.exit_code == 0:
            assert not [l for l in r.output.splitlines() if l.startswith("error:")], where
            if args[0] not in ("info", "layers"):
                with Image.open(out) as im:
                    im.load()
                assert json.loads(out.with_suffix(".png.json").read_text())["status"] == "complete"
        else:
            errors = [l for l in r.output.splitlines() if l.startswith("error:")]
            assert len(errors) == 1 and "unexpected" not in errors[0], f"{where}\n{r.output}"
            assert "Traceback" not in r.output, where
            if r.exit_code == 2:  # bad input: found before any work, nothing written
                assert not out.exists(), f"{where}: exit {r.exit_code} left {out}"
            elif not out.exists():  # a run that failed with no good image to keep says so
                assert r.exit_code == 1 and ("no good image" in errors[0] or "cannot" in errors[0]), \
                    f"{where}: exit {r.exit_code} wrote nothing: {errors[0]}"
            else:  # a run that stopped keeps its last good image, complete, with its sidecar
                with Image.open(out) as im:
                    im.load()
                status = json.loads(out.with_suffix(".png.json").read_text())["status"]
                assert status.startswith("stopped:"), f"{where}: {status}"
        if out_dir.exists():
            assert no_temp_files(out_dir), where
        shutil.rmtree(tmp_path / f"c{k}")
    print(f"fuzz: {FUZZ_CASES} cases in {time.monotonic() - t0:.1f}s, exit codes {outcomes}")
    assert outcomes[0] > 10 and outcomes[2] > 100, outcomes  # both kinds of case were reached
