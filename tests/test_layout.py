"""The package's folders are its architecture: each part imports only from the parts below it."""

import ast

import pytest

from conftest import REPO

PACKAGE = REPO / "alexnet_mnist"
# Bottom to top; the shared modules at the top level come first.
LAYERS = (("config", "errors", "quiet", "atomic_files"), ("models",), ("data",), ("inference",), ("reporting",), ("training",), ("cli",))
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
MAX_LINES = 400
MODULES = sorted(path for path in PACKAGE.rglob("*.py") if path.parent != PACKAGE or path.stem in RANK)


def part_of(module_name):
    """The part of the package a dotted module name (alexnet_mnist.X...) belongs to."""
    return module_name.split(".")[1]


def imported_parts(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alexnet_mnist"):
            if node.module == "alexnet_mnist":  # from alexnet_mnist import data, quiet, ...
                yield from (alias.name for alias in node.names)
            else:
                yield part_of(node.module)
        elif isinstance(node, ast.Import):
            yield from (part_of(alias.name) for alias in node.names if alias.name.startswith("alexnet_mnist."))


def test_every_module_belongs_to_a_known_part():
    assert {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in MODULES} == set(RANK)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_a_module_imports_only_from_its_own_part_or_below(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    above = sorted({part for part in imported_parts(path) if RANK[part] > RANK[own]})
    assert not above, f"{path.relative_to(PACKAGE)} ({own}) imports from {above}, a layer above it"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_outgrows_its_job(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
