"""The package list in pyproject.toml must name every subpackage, or a non-editable install loses it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Folders at the root that are not part of the installed package.
NOT_PACKAGE = {"tests", "bench", "examples", "docs", "proto", "build", "site"}


def test_every_subpackage_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for package, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if rel.parts and (rel.parts[0].startswith(".") or rel.parts[0] in NOT_PACKAGE):
                continue
            found.add(".".join([package, *rel.parts]))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
