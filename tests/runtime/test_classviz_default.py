"""Class visualization's default is the recipe the documentation states (--param natural since
issue 21's second fresh draw), the parameterizations page says which technique uses which
parameterization by default, and natural runs unsaturated, with its own options."""

import re
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_default_class_visualization_is_the_recipe_the_docs_state():
    from ortviz.techniques.registry import techniques
    d = techniques()["class-visualization"].defaults()
    assert (d["param"], d["transforms"], d["objective"], d["iterations"], d["lr"]) == \
        ("natural", "standard", "score", 512, 0.0), d
    page = (DOCS / "techniques" / "class-visualization.md").read_text()
    said = " ".join(re.search(r"## Defaults\n\n(.*?)\n\n", page, re.S).group(1).split())
    for words in ("`--param natural`", "`--transforms standard`", "512 iterations", "Adam lr 0.05",
                  "`--objective score`"):
        assert words in said, f"docs' Defaults paragraph lacks {words!r}: {said!r}"


def test_the_parameterizations_table_says_each_command_s_default():
    """docs/parameterizations.md's "used by default in" column, for every built-in command."""
    from ortviz.cli.common import SHORT
    from ortviz.render.param import NAMES
    from ortviz.techniques.registry import techniques
    page = (DOCS / "parameterizations.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[4]
            for line in page.splitlines() if line.startswith("| `") and line.split("|")[1].strip().strip("`") in NAMES}
    assert set(rows) == set(NAMES), rows
    for command, name in SHORT.items():
        default = techniques()[name].defaults()["param"]
        where = [p for p, cell in rows.items() if f"`{command}`" in cell]
        assert where == [default], f"{command}: default --param {default}, the table lists it under {where}"


def test_decay_is_refused_with_natural_and_read_with_fft(tmp_path):
    """--decay shapes the fft spectrum only: with --param natural it is refused in one line
    (exit 2, no file); with --param fft it runs."""
    from probes import invoke, one_error_line
    r = invoke("class-viz", "--param", "natural", "--decay", "2", "--iterations", 1, "-o", tmp_path / "x.png")
    assert r.exit_code == 2, r.output
    assert one_error_line(r) == ("error: --decay applies to --param fft only; this run's --param is "
                                 "natural (add --param fft, or leave --decay out)")
    assert list(tmp_path.iterdir()) == []
    r = invoke("class-viz", "--param", "fft", "--decay", "2", "--iterations", 1, "-o", tmp_path / "x.png")
    assert r.exit_code == 0, r.output


def test_natural_pictures_stay_unsaturated_where_fft_pins_values(tmp_path):
    """32 iterations on flamingo (seed 0): --param natural pins no value at 0 or 255, where the
    fft parameterization already pins some (a cheap stand-in for the benchmark's clip column)."""
    import ortviz
    model = ortviz.load(provider="cpu", threads=1)
    pics = {p: model.class_visualization("flamingo", seed=0, iterations=32, param=p, progress=False)
            for p in ("natural", "fft")}
    clip = {p: float(np.mean((pic.image == 0) | (pic.image == 255))) for p, pic in pics.items()}
    assert clip["natural"] == 0.0 and clip["fft"] > 0.0, clip
    assert pics["natural"].meta["params"]["param"] == "natural"
