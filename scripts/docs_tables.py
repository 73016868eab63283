"""The documentation's measurement tables, generated from the result files.

A page holds a generated block between two markers:

    <!-- generated: NAME -->
    ...
    <!-- end generated -->

and this script rewrites every such block in docs/*.md from the result files (docs/recognition.json,
docs/inversion.json, bench/results/*.json), so a new measurement changes the tables by a rerun,
never by hand. ``--check`` rewrites nothing and exits 1 naming each block that differs from what
the result files give (tests/docs checks the committed pages this way).

    .venv/bin/python scripts/docs_tables.py [--check]

It imports the benchmarks' own table functions (bench/recognition.py, bench/inversion.py,
bench/dream.py, bench/run.py), so a table reads the same here as where it was measured; those
need only the runtime environment (numpy, ortviz), not torch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))

BLOCK = re.compile(r"(<!-- generated: ([a-z0-9-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def _labels() -> dict[int, str]:
    lines = (ROOT / "models" / "imagenet_labels.tsv").read_text().splitlines()[1:]
    return {int(i): names.split(",")[0] for i, _, names in (line.split("\t") for line in lines)}


def _newest(pattern: str) -> Path:
    found = sorted(RESULTS.glob(pattern))
    if not found:
        raise SystemExit(f"error: no bench/results/{pattern}")
    return found[-1]


def _source(*paths: Path) -> str:
    return "Generated from " + ", ".join(f"`{p.relative_to(ROOT)}`" for p in paths) + \
        " by `scripts/docs_tables.py`."


def _recognition(*paths: Path):
    """The generator of the table of class-visualization recognition results files (their
    rows in the files' order)."""
    def generate() -> str:
        import recognition as rec
        return rec.table(list(paths)) + "\n\n" + _source(*paths)
    return generate


recognition = _recognition(DOCS / "recognition.json")
recognition_screen = _recognition(RESULTS / "recognition-screen.json")
recognition_random = _recognition(RESULTS / "recognition-random-20261206.json")
# issue 21: the fft default, --param natural and its wider scale jitter on a fresh draw, then the screen
recognition_issue21 = _recognition(RESULTS / "recognition-random-2027-fft.json",
                                   RESULTS / "recognition-random-2027-natural.json",
                                   RESULTS / "recognition-random-2027-wide.json",
                                   RESULTS / "recognition-screen-issue21.json")
# issue 21's second fresh draw, after which natural became the default
recognition_2028 = _recognition(RESULTS / "recognition-random-2028-natural.json",
                                RESULTS / "recognition-random-2028-fft.json")
# issue 21 item 4: a second exported model (EfficientNet-Lite2), judged by Lite0 and Lite1
recognition_lite2 = _recognition(RESULTS / "recognition-lite2-2029.json",
                                 RESULTS / "recognition-lite2-2030.json")
# ... and three recipes screened on it, on a tuning draw (3100) that no reported row uses
recognition_lite2_screen = _recognition(RESULTS / "recognition-lite2-screen-3100.json")
# issue 21's third fresh draws: natural + standard (the default) and the wider scale jitter, on both models
recognition_2031 = _recognition(RESULTS / "recognition-random-2031-natural.json",
                                RESULTS / "recognition-random-2031-wide.json")
recognition_lite2_2032 = _recognition(RESULTS / "recognition-lite2-2032-natural.json",
                                      RESULTS / "recognition-lite2-2032-wide.json")
recognition_lite2_2033 = _recognition(RESULTS / "recognition-lite2-2033-natural.json",
                                      RESULTS / "recognition-lite2-2033-crops2.json")
recognition_2034_amd = _recognition(RESULTS / "recognition-random-2034-amd.json")


def recognition_default() -> str:
    """The last run of docs/recognition.json (the hand-picked classes): its figures and its misses."""
    import recognition as rec
    path = DOCS / "recognition.json"
    run = json.loads(path.read_text())["runs"][-1]
    s, rows, said = run["summary"], run["rows"], _labels()
    j1, j2 = rec.JUDGES
    n1 = sum(r[j1]["top1"] for r in rows)
    n2 = sum(r[j2]["top5"] for r in rows)
    misses = []
    for r in rows:
        what = []
        if not r[j1]["top1"]:
            what.append(f"Lite1 says {said[r[j1]['said']]}" + (", the target in its top-5" if r[j1]["top5"] else ""))
        if not r[j2]["top5"]:
            what.append("not in Lite2's top-5")
        if what:
            misses.append(f"{r['label']} seed {r['seed']} ({'; '.join(what)})")
    return (f"**The last row (“{run['name']}”, {run['date']}): Lite1 {rec._pct(n1 / len(rows))} top-1 "
            f"({n1}/{len(rows)}), Lite2 {rec._pct(n2 / len(rows))} top-5 ({n2}/{len(rows)})**, "
            f"{s['seconds_per_image']} s per image. Its misses: {', '.join(misses) or 'none'}.\n")


def _inversion(path: Path):
    """The generator of one feature-inversion results file's table."""
    def generate() -> str:
        import inversion as inv
        return inv.table(path) + "\n\n" + _source(path)
    return generate


inversion = _inversion(DOCS / "inversion.json")
inversion_screen = _inversion(RESULTS / "inversion-screen.json")
inversion_issue22 = _inversion(RESULTS / "inversion-20261206.json")
inversion_screen_issue22 = _inversion(RESULTS / "inversion-screen-20261206.json")
inversion_natural = _inversion(RESULTS / "inversion-20261206b.json")
inversion_screen_natural = _inversion(RESULTS / "inversion-screen-natural-20261206.json")
inversion_debian = _inversion(RESULTS / "inversion-20261206c.json")
inversion_screen_debian = _inversion(RESULTS / "inversion-screen-20261206c.json")
inversion_controls = _inversion(RESULTS / "inversion-controls-20261206.json")
inversion_screen_early = _inversion(RESULTS / "inversion-screen-20261206d.json")
inversion_seeds = _inversion(RESULTS / "inversion-20261207.json")
inversion_seeds_middle = _inversion(RESULTS / "inversion-20261207-middle.json")
inversion_screen_amd = _inversion(RESULTS / "inversion-screen-20261207.json")
inversion_screen_tone = _inversion(RESULTS / "inversion-screen-20261207b.json")


def dream_transforms() -> str:
    import dream
    path = _newest("dream-*.json")
    return dream.table(json.loads(path.read_text())["rows"]) + "\n\n" + _source(path)


def speed() -> str:
    import run
    path = _newest("cpu-*.json")
    return run.markdown(json.loads(path.read_text())).strip() + "\n\n" + _source(path)


def numpy_side() -> str:
    path = RESULTS / "numpy-side.json"
    d = json.loads(path.read_text())
    out = [f"{d['cpu']}, {d['threads']} threads, numpy {d['numpy']}, {d['rounds']} interleaved rounds "
           f"after {d['warmup']} untimed ones, medians, {d['date']}; the class-score gradient graph "
           f"took {d['graph_ms']} ms a call.", "",
           "| parameterization + transforms | numpy side, ms | share of the graph's time |",
           "| --- | --- | --- |"]
    for r in d["rows"]:
        out.append(f"| {r['config'].replace('+', ' + ')} | {r['numpy_ms']:.1f} | {r['ratio_to_graph']:.0%} |")
    return "\n".join(out) + "\n\n" + _source(path)


def browser() -> str:
    import browser as page_bench  # bench/browser.py
    path = _newest("browser-*.json")
    return page_bench.table(json.loads(path.read_text())) + "\n\n" + _source(path)


ATLAS_RUNS = {"local1": "1 worker (2 threads)", "local2": "2 workers (1 thread each)",
              "ray": "Ray, local instance (1 thread per task)"}


def atlas() -> str:
    """Each executor's newest measurement over the atlas results (later files replace earlier)."""
    paths = sorted(RESULTS.glob("atlas-*.json"))
    best, full, used = {}, None, []
    for path in paths:
        d = json.loads(path.read_text())
        for r in d["rows"]:
            best[(r["run"], r["kind"])] = (r["per_hour"], d["machine"])
        full, used = d["full_atlas"], used + [path]
    out = ["| executor | channels / hour | classes / hour | load average at the start |",
           "| --- | --- | --- | --- |"]
    for run, name in ATLAS_RUNS.items():
        if (run, "channel") in best:
            (ch, m), (cl, _) = best[(run, "channel")], best[(run, "class")]
            out.append(f"| {name} | {ch} | {cl} | {m['loadavg'][0]:.1f} ({m['date'][:10]}, {m['cpu']}) |")
    h = full["hours"]
    rate = {k: f"{ATLAS_RUNS[v.split()[0]]} at {v.split()[1]}" for k, v in full["from"].items()}
    out += ["", f"A full atlas of the default model ({full['channels']:,} channels and {full['classes']:,} "
                f"classes, no photo pictures) at the best rates of the newest measurement (channels: "
                f"{rate['channel']}; classes: {rate['class']}): {h['1']} h on one machine, {h['10']} h on 10, "
                f"{h['100']} h on 100."]
    return "\n".join(out) + "\n\n" + _source(*used)


GENERATORS = {"recognition": recognition, "recognition-default": recognition_default,
              "recognition-screen": recognition_screen,
              "recognition-random": recognition_random, "recognition-issue21": recognition_issue21,
              "recognition-2028": recognition_2028, "recognition-lite2": recognition_lite2,
              "recognition-lite2-screen": recognition_lite2_screen,
              "recognition-2031": recognition_2031, "recognition-lite2-2032": recognition_lite2_2032,
              "recognition-lite2-2033": recognition_lite2_2033, "recognition-2034-amd": recognition_2034_amd,
              "inversion": inversion,
              "inversion-screen": inversion_screen,
              "inversion-issue22": inversion_issue22, "inversion-screen-issue22": inversion_screen_issue22,
              "inversion-natural": inversion_natural, "inversion-screen-natural": inversion_screen_natural,
              "inversion-debian": inversion_debian, "inversion-screen-debian": inversion_screen_debian,
              "inversion-controls": inversion_controls, "inversion-screen-early": inversion_screen_early,
              "inversion-seeds": inversion_seeds,
              "inversion-seeds-middle": inversion_seeds_middle, "inversion-screen-amd": inversion_screen_amd,
              "inversion-screen-tone": inversion_screen_tone,
              "dream-transforms": dream_transforms,
              "speed": speed, "numpy-side": numpy_side, "atlas": atlas, "browser": browser}


def blocks(text: str) -> list[tuple[str, str]]:
    """The generated blocks of a page: (name, current content)."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def render(text: str, made: dict[str, str]) -> str:
    def one(m):
        name = m.group(2)
        if name not in GENERATORS:
            raise SystemExit(f"error: unknown generated block {name!r} (known: {', '.join(GENERATORS)})")
        if name not in made:
            made[name] = GENERATORS[name]().rstrip("\n") + "\n"
        return m.group(1) + made[name] + m.group(4)
    return BLOCK.sub(one, text)


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def stale() -> list[str]:
    """'page: block' for each generated block whose committed content is not what the results give."""
    made, out = {}, []
    for page in pages():
        text = page.read_text()
        new = render(text, made)
        for (name, old), (_, want) in zip(blocks(text), blocks(new)):
            if old != want:
                out.append(f"{page.relative_to(ROOT)}: {name}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale()
        for b in bad:
            print(f"stale: {b} (run scripts/docs_tables.py)", file=sys.stderr)
        return 1 if bad else 0
    made = {}
    for page in pages():
        text = page.read_text()
        new = render(text, made)
        if new != text:
            page.write_text(new)
            print(f"rewrote {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
