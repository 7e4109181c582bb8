"""The documentation site builds with `mkdocs build --strict`: a broken link or anchor, a page missing
from docs/ or from the nav, a missing included file or README section, or a docstring that
mkdocstrings cannot render fails. The result tables are the benchmark scripts' own files, included."""

import html
import importlib.util
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

# The benchmark scripts' files and the page that includes each (from its line 3, after the title).
INCLUDED_TABLES = {
    "ACCURACY.md": "recipes",
    "RESULTS.md": "performance",
    "PROFILE.md": "performance",
    "SCALING.md": "distributed",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built from this checkout into a temporary folder; in CI a missing mkdocs is a failure."""
    if not all(importlib.util.find_spec(name) for name in ("mkdocs", "material", "mkdocstrings_handlers.python")):
        message = 'mkdocs-material and mkdocstrings are not installed: pip install -e ".[docs]"'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return site_dir


def page_text(site_dir, page):
    """The text a reader sees on `page` of the site: its HTML without tags, entities decoded."""
    text = re.sub(r"<[^>]+>", " ", (site_dir / page / "index.html").read_text())
    return " ".join(html.unescape(text).split())


def table_cells(markdown):
    """The text of every cell of the Markdown tables in `markdown`, without its code and bold marks."""
    for line in markdown.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            yield from (cell.strip().replace("`", "").replace("**", "") for cell in line.strip("|").split("|"))


def test_the_site_builds_strictly(site):
    assert (site / "index.html").is_file()


@pytest.mark.parametrize("name, page", INCLUDED_TABLES.items())
def test_the_site_shows_each_benchmark_table_as_its_script_wrote_it(site, name, page):
    lines = (REPO / "benchmarks" / name).read_text().splitlines()
    assert lines[0].startswith("# ") and not lines[1], f"{name}: the docs include it from line 3, after its title"
    shown = page_text(site, page)
    missing = [cell for cell in table_cells("\n".join(lines)) if cell and cell not in shown]
    assert not missing, f"{page} does not show these cells of benchmarks/{name}: {missing[:10]}"


def test_the_api_page_is_rendered_from_the_docstrings(site):
    shown = page_text(site, "api")
    for name in ("MLP", "AlexNet", "Ensemble", "LocalResponseNormalization", "build_model", "load_model",
                 "train_and_evaluate", "Config", "make_splits", "load", "make_test_split"):
        assert re.search(rf"\b{name}\s*\(", shown), f"no signature of {name} on the API page"
    assert "7,703,242 parameters" in shown  # AlexNet's docstring
