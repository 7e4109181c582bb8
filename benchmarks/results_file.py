"""benchmarks/RESULTS.md holds one section per benchmark script, each rewritten by its own script."""

from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"


def write_section(section, path=RESULTS):
    """Put `section` (markdown whose first line is its heading, with no other heading in it) into
    `path` in place of the section under the same heading, or after the others."""
    heading = section.splitlines()[0]
    lines = path.read_text().splitlines() if path.is_file() else []
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
        lines[start:end] = section.rstrip("\n").splitlines() + [""]
    else:
        lines += ([""] if lines and lines[-1] else []) + section.rstrip("\n").splitlines() + [""]
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
