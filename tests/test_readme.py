"""The commands of the README and of the documentation pages, run as a user would copy them: each must
compose, and each experiment config must train (`debug=smoke`), so no page can drift from conf/ again."""

import re
import shlex
import subprocess
import sys
from importlib.resources import files

import pytest
from conftest import QUIET, REPO
from hydra.core.override_parser.overrides_parser import OverridesParser

sys.path.insert(0, str(REPO / "benchmarks"))
import accuracy  # noqa: E402

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A command line: an optional shell prompt and environment variables, then the program and its arguments.
COMMAND = re.compile(r"""(?:\$\s+)?(?:[A-Za-z_]\w*=(?:'[^']*'|"[^"]*"|\S+)\s+)*(?:python -m alexnet_mnist|alexnet-mnist)\s+(.*)""")
EXPERIMENTS = sorted(p.name.removesuffix(".yaml") for p in files("alexnet_mnist.conf").joinpath("experiment").iterdir() if p.name.endswith(".yaml"))
# An ensemble recipe that is its member recipe k times (as test_accuracy_table pins) trains as that recipe
# does, which trains here; ensemble_diverse's mixed members train here too.
SAME_AS_MEMBERS = set(accuracy.ENSEMBLES)


def code_lines(text):
    """The lines of a Markdown text's code blocks, fenced or indented, with continued lines joined."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + line.strip()
            else:
                lines.append(line.strip())
    return lines


def documented_commands():
    """(page, arguments) of every distinct command line in the code blocks of the README and docs/."""
    commands = {}
    for page in PAGES:
        for line in code_lines(page.read_text()):
            if match := COMMAND.fullmatch(line):
                commands.setdefault(tuple(shlex.split(match[1], comments=True)), page.relative_to(REPO))
    return [(str(page), list(args)) for args, page in commands.items()]


def jobs(args):
    """The override lists that `args` runs: itself, or for a sweep (`-m`) as many jobs as its longest
    sweep has values, job i taking value i of every sweep (or its last), so every value is composed."""
    if "-m" not in args:
        return [args]
    overrides = [a for a in args if a != "-m"]
    parsed = OverridesParser.create().parse_overrides(overrides)
    values = [list(o.sweep_string_iterator()) if o.is_sweep_override() else [text] for o, text in zip(parsed, overrides)]
    key_of = [o.get_key_element() + "=" if o.is_sweep_override() else "" for o in parsed]
    return [
        [key + choices[min(i, len(choices) - 1)] for key, choices in zip(key_of, values)]
        for i in range(max(map(len, values), default=1))
    ]


def test_the_pages_show_commands_and_every_experiment():
    commands = [args for _, args in documented_commands()]
    assert len(commands) >= 20
    for name in EXPERIMENTS:
        assert [f"experiment={name}"] in [[a for a in c if a.startswith("experiment=")] for c in commands], name


@pytest.mark.parametrize("page, args", documented_commands(), ids=lambda x: x if isinstance(x, str) and x.endswith(".md") else " ".join(x))
def test_every_documented_command_composes(page, args, tmp_path):
    for overrides in jobs(args):
        result = subprocess.run(
            [sys.executable, "-m", "alexnet_mnist", *overrides, "--cfg", "job"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, f"{page}: {' '.join(overrides)}:\n{result.stderr}"
    assert not list(tmp_path.iterdir())  # composing writes nothing


@pytest.mark.real_data
@pytest.mark.parametrize("name", sorted(set(EXPERIMENTS) - SAME_AS_MEMBERS))
def test_every_experiment_trains_in_smoke_mode(name, tfds_data_dir, tmp_path):
    result = subprocess.run(
        # Pictures and exports are the same code for every experiment, tested on their own elsewhere;
        # two AlexNets show an ensemble recipe trains as well as three.
        [sys.executable, "-m", "alexnet_mnist", f"experiment={name}", "debug=smoke", *QUIET, "hydra.run.dir=run",
         *(["ensemble.members=2"] if name.startswith("ensemble_") else [])],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert "run directory run: model.keras, metrics.json" in result.stdout.splitlines()[-1]
