"""The documentation: the site builds strictly, its measurement tables are what the result files
give, and README stays a front page. Runs in .venv-docs (scripts/envs.sh docs), stage 5."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import docs_tables  # noqa: E402


def test_the_site_builds_strictly_with_every_page_and_the_api_reference(tmp_path):
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", str(site)], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WARNING" not in r.stderr, r.stderr[-3000:]
    pages = sorted(p.relative_to(ROOT / "docs").with_suffix(".html").as_posix()
                   for p in (ROOT / "docs").rglob("*.md"))
    for page in pages:  # every Markdown file is a page of the site (strict mode refuses orphans)
        assert (site / page).is_file(), page
    api = (site / "api.html").read_text()
    for name in ("ortviz.load", "ortviz.api.Model.class_visualization", "ortviz.api.Picture",
                 "ortviz.objective.algebra.channel", "ortviz.techniques.spec.Technique", "ortviz.render.context.Context",
                 "ortviz.render.loop.optimize"):
        assert f'id="{name}"' in api, f"{name} missing from the API reference"
    assert ":func:" not in api and ":mod:" not in api  # the docstrings' Sphinx roles become code (scripts/griffe_roles.py)


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """The strictness is real: a link to a page or an anchor that does not exist is an error."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[there](other.md#nowhere) and [gone](missing.md)\n")
    (docs / "other.md").write_text("# Other\n")
    config = (ROOT / "mkdocs.yml").read_text()
    config = re.sub(r"\nnav:\n(  .*\n)*", "\nnav:\n  - index.md\n  - other.md\n", config)
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}").replace("site_dir: build/site",
                                                                          f"site_dir: {tmp_path / 'site'}")
    (tmp_path / "mkdocs.yml").write_text(config)
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
                       timeout=300)
    assert r.returncode != 0
    assert "missing.md" in r.stderr and "#nowhere" in r.stderr, r.stderr[-3000:]


def test_the_committed_tables_are_what_the_result_files_give():
    assert docs_tables.stale() == [], "run scripts/docs_tables.py"


def test_every_table_generator_is_used_and_every_block_has_a_generator():
    used = {name for page in docs_tables.pages() for name, _ in docs_tables.blocks(page.read_text())}
    assert used == set(docs_tables.GENERATORS)


def test_a_table_edited_by_hand_is_found_stale():
    page = ROOT / "docs" / "quality.md"
    text = page.read_text()
    (name, body), = [b for b in docs_tables.blocks(text) if b[0] == "recognition"]
    edited = text.replace(body, body.replace("| 512 |", "| 511 |", 1))
    assert edited != text
    assert docs_tables.render(edited, {}) == text  # the script puts the measured figures back


def test_readme_is_a_front_page_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300, len(readme.splitlines())
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    commands = [line.split("#")[0].strip() for b in blocks for line in b.splitlines()]
    assert "make demo" in commands and "make test" in commands
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()  # CI runs README's command
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndemo:" in makefile and "\ntest:" in makefile


def test_readmes_links_and_images_point_at_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert local, "README links to no page"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []
