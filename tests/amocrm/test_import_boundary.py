"""``amogate.amocrm`` is library-like: it must not import anything else from amogate."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import amogate.amocrm

PACKAGE = "amogate.amocrm"
ROOT = Path(amogate.amocrm.__file__).parent


def package_of(path: Path) -> str:
    """The package a module's relative imports start from."""
    return ".".join((PACKAGE, *path.relative_to(ROOT).parent.parts))


def imported_modules(source: str, package: str) -> list[str]:
    """Absolute names of everything ``source`` imports, relative imports resolved."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                prefix = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{prefix}.{base}" if base else prefix
            if node.module:
                names.append(base)
            else:
                names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def is_outside(name: str) -> bool:
    inside = name == PACKAGE or name.startswith(PACKAGE + ".")
    return (name == "amogate" or name.startswith("amogate.")) and not inside


def test_the_amocrm_package_imports_nothing_else_from_amogate() -> None:
    paths = sorted(ROOT.rglob("*.py"))
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in paths
        for name in imported_modules(path.read_text(encoding="utf-8"), package_of(path))
        if is_outside(name)
    ]

    assert len(paths) >= 7
    assert offenders == []


@pytest.mark.parametrize(
    ("source", "package", "outside"),
    [
        ("import amogate.settings", "amogate.amocrm", True),
        ("from amogate import __version__", "amogate.amocrm", True),
        ("from amogate.storage.db import x", "amogate.amocrm", True),
        ("from .. import settings", "amogate.amocrm", True),
        ("from ...storage import db", "amogate.amocrm.sandbox", True),
        ("from ..errors import AmoError", "amogate.amocrm.sandbox", False),
        ("from . import errors", "amogate.amocrm", False),
        ("from amogate.amocrm.errors import AmoError", "amogate.amocrm", False),
        ("import amogate.amocrmx", "amogate.amocrm", True),
        ("import httpx", "amogate.amocrm", False),
    ],
)
def test_the_scan_tells_inside_from_outside(source: str, package: str, outside: bool) -> None:
    assert any(is_outside(name) for name in imported_modules(source, package)) is outside
