"""Print the project's requirements, one a line: pyproject.toml's `[project].dependencies` plus the named extras.

The images install them with `pip install -r - -c constraints.txt`, so an image gets the same pinned
version set as `make install` without copying the project's code into it (ZenML ships the code to each
step at run time). Standard library only: it runs in a bare Python 3.11+ before anything is installed.

    python docker/project_requirements.py [pyproject.toml] [--extra gpu]...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tomllib


def project_requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        print(f"error: {pyproject}: no extra named {', '.join(unknown)}; it has {', '.join(optional)}", file=sys.stderr)
        raise SystemExit(2)
    return [*project["dependencies"], *(req for extra in extras for req in optional[extra])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "pyproject.toml"
    parser.add_argument("pyproject", nargs="?", type=Path, default=default)
    parser.add_argument("--extra", action="append", default=[], help="an optional-dependencies group (repeatable)")
    args = parser.parse_args(argv)
    print("\n".join(project_requirements(args.pyproject, args.extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
