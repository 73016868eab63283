"""The default class visualization is the recipe the documentation states (issue 21)."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_default_class_visualization_is_the_recipe_the_docs_state():
    from ortviz.plugins import techniques
    d = techniques()["class-visualization"].defaults()
    assert (d["param"], d["transforms"], d["objective"], d["iterations"], d["lr"]) == \
        ("natural", "standard", "score", 512, 0.0), d
    page = (DOCS / "techniques" / "class-visualization.md").read_text()
    said = " ".join(re.search(r"## Defaults\n\n(.*?)\n\n", page, re.S).group(1).split())
    for words in ("`--param natural`", "`--transforms standard`", "512 iterations", "Adam lr 0.05",
                  "`--objective score`"):
        assert words in said, f"docs' Defaults paragraph lacks {words!r}: {said!r}"
    table = (DOCS / "parameterizations.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| `natural` |"))
    assert "`class-viz`" in row, row


def test_decay_is_refused_with_the_default_and_read_with_fft(tmp_path):
    """--decay shapes the fft spectrum only: with the natural default it is refused in one line
    (exit 2, no file); with --param fft it runs."""
    from probes import invoke, one_error_line
    r = invoke("class-viz", "--decay", "2", "--iterations", 1, "-o", tmp_path / "x.png")
    assert r.exit_code == 2, r.output
    assert one_error_line(r) == ("error: --decay applies to --param fft only; this run's --param is "
                                 "natural (add --param fft, or leave --decay out)")
    assert list(tmp_path.iterdir()) == []
    r = invoke("class-viz", "--param", "fft", "--decay", "2", "--iterations", 1, "-o", tmp_path / "x.png")
    assert r.exit_code == 0, r.output


def test_the_default_picture_is_natural_and_unsaturated_after_a_short_run(tmp_path):
    """32 iterations of the default on flamingo (seed 0): no value pinned at 0 or 255, where the
    fft recipe already pins some (a cheap stand-in for the benchmark's clip column)."""
    import numpy as np
    import ortviz
    model = ortviz.load(provider="cpu", threads=1)
    pics = {p: model.class_visualization("flamingo", seed=0, iterations=32, param=p, progress=False)
            for p in ("natural", "fft")}
    clip = {p: float(np.mean((pic.image == 0) | (pic.image == 255))) for p, pic in pics.items()}
    assert clip["natural"] == 0.0 and clip["fft"] > 0.0, clip
    assert pics["natural"].meta["params"]["param"] == "natural"
