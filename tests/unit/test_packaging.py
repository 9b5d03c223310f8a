"""Every package xwpy's code imports is declared in setup.cfg, by the distribution that provides it
(a module that only happened to come with another dependency breaks on that dependency's next
release)."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def imported_top_levels(root: Path) -> dict[str, set[str]]:
    """Top-level names imported by the modules under ROOT (absolute imports), with where."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def declared() -> set[str]:
    """Normalised names of the distributions setup.cfg requires, with any extra."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in cfg["options.extras_require"].values():
        lines += extra.splitlines()
    names = {re.match(r"[A-Za-z0-9._-]+", line.strip()).group(0) for line in lines if line.strip()}
    return {normalise(n) for n in names}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def undeclared(root: Path, needed: set[str]) -> list[str]:
    provided_by = importlib.metadata.packages_distributions()
    missing = []
    for top, where in sorted(imported_top_levels(root).items()):
        if top == "xwpy" or top in sys.stdlib_module_names or top.startswith("_"):
            continue  # our own, the standard library, CPython's accelerator modules
        dists = {normalise(d) for d in provided_by.get(top, [])}
        if not dists & needed:
            missing.append(f"{top} (from {sorted(dists) or 'no installed distribution'}) in {sorted(where)[:2]}")
    return missing


def test_every_imported_package_is_declared():
    missing = undeclared(REPO / "xwpy", declared())
    assert not missing, "imported but not declared in setup.cfg: " + "; ".join(missing)


def test_the_checker_notices_an_undeclared_import(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "m.py").write_text("import attrs\nfrom zope.interface import Interface\nimport os, _sha2\n")
    assert [m.split()[0] for m in undeclared(tmp_path, {"attrs"})] == ["zope"]
    assert undeclared(tmp_path, {"attrs", "zope-interface"}) == []
