"""amogate's packages import each other without cycles (imports inside functions count too).

A cycle means some code sits in the wrong package; the failure names the imports that close it.
`python -m tools.package_graph` prints the whole graph.
"""

from __future__ import annotations

from pathlib import Path

from tools.package_graph import Import, cycles, describe_cycle, imports_of, scan

import amogate

ROOT = Path(amogate.__file__).parent


def test_amogate_packages_form_a_graph_without_cycles() -> None:
    report = scan(ROOT)
    found = [describe_cycle(report, component) for component in cycles(report.edges)]

    assert len(report.modules) > 100  # the scan saw the whole package
    assert not found, "import cycles between amogate packages:\n" + "\n".join(found)


def test_the_scan_resolves_relative_and_function_local_imports() -> None:
    source = (
        "from amogate.storage import db\n"
        "from .. import settings\n"
        "def later():\n"
        "    from amogate.api import auth\n"
        "    import amogate.cli\n"
        "import httpx\n"
    )
    known = {"amogate.settings", "amogate.storage.db", "amogate.api.auth"}

    found = imports_of(source, "amogate.worker.deliver", is_package=False, known=known)

    assert found == [
        Import("amogate.worker.deliver", "amogate.storage.db", 1, False),
        Import("amogate.worker.deliver", "amogate.settings", 2, False),
        Import("amogate.worker.deliver", "amogate.api.auth", 4, True),
        Import("amogate.worker.deliver", "amogate.cli", 5, True),
    ]


def test_a_cycle_is_found_however_long_and_only_once() -> None:
    graph = {
        "api": {"leads"},
        "leads": {"worker"},
        "worker": {"api", "storage"},
        "storage": set(),
        "cli": {"commands"},
        "commands": set(),
    }

    assert cycles(graph) == [["api", "leads", "worker"]]
    graph["commands"].add("cli")
    assert cycles(graph) == [["api", "leads", "worker"], ["cli", "commands"]]


# The domain: what the gateway does, whoever asks (routes, admin page, CLI render its results).
DOMAIN = (
    "access",
    "accounts",
    "connection",
    "contacts",
    "deliveries",
    "errors",
    "failures",
    "info",
    "leads",
    "runtime",
    "storage",
    "worker",
)
DOMAIN_PARTS = [[name] for name in DOMAIN]
HTTP_SIDE = ("fastapi", "starlette", *(f"amogate.{p}" for p in ("api", "web", "commands", "cli")))


def test_the_domain_knows_no_http() -> None:
    every = scan(ROOT).modules
    modules = {name: path for name, path in every.items() if name.split(".")[1:2] in DOMAIN_PARTS}
    offenders = [
        f"{item.module}:{item.line} imports {item.target}"
        for name, path in modules.items()
        for item in imports_of(
            path.read_text(encoding="utf-8"),
            name,
            is_package=path.name == "__init__.py",
            known=set(every),
            everything=True,
        )
        if item.target.split(".")[0] in HTTP_SIDE or item.target.startswith(HTTP_SIDE)
    ]

    assert len(modules) > 50
    assert offenders == []
