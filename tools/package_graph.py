"""The package import graph of amogate, and the module sizes around it.

    python -m tools.package_graph               # src/amogate of this checkout
    python -m tools.package_graph PATH/amogate  # another checkout's package

A node is a sub-package (`api`, `worker`, ...) or a top-level module (`errors`, `settings`);
an edge A -> B means some module of A imports a module of B, at the top of a file or inside a
function alike (a function-local import is still a dependency, only a hidden one). The test
`tests/unit/test_package_graph.py` asserts the graph has no cycle.
"""

from __future__ import annotations

import ast
import itertools
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT_PACKAGE = "amogate"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "src" / ROOT_PACKAGE


@dataclass(frozen=True, slots=True)
class Import:
    """One import of an amogate module: who imports what, where, and whether in a function."""

    module: str
    target: str
    line: int
    local: bool


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package under `root`, by dotted name (`amogate.api.errors`)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join((ROOT_PACKAGE, *parts))] = path
    return names


def imports_of(
    source: str, module: str, *, is_package: bool, known: set[str], everything: bool = False
) -> list[Import]:
    """The amogate modules `source` imports (with `everything`, other libraries too), relative
    imports resolved; `local` marks the imports inside a function or method body."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node, local in _walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                prefix = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{prefix}.{base}" if base else prefix
            # `from amogate import settings` imports a module; `from x import name` a name of x.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in dict.fromkeys(targets):  # `from x import a, b` is one import of x
            if everything or target == ROOT_PACKAGE or target.startswith(ROOT_PACKAGE + "."):
                found.append(Import(module, target, node.lineno, local))
    return sorted(found, key=lambda item: item.line)


def _walk(tree: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every node with whether it sits inside a function."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, local = stack.pop()
        yield node, local
        inside = local or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        stack.extend((child, inside) for child in ast.iter_child_nodes(node))


def node_of(module: str) -> str:
    """The graph node of a module: its sub-package or top-level module under amogate."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_PACKAGE


@dataclass
class Report:
    modules: dict[str, Path]
    imports: list[Import]

    @property
    def edges(self) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {node_of(m): set() for m in self.modules}
        for item in self.imports:
            source, target = node_of(item.module), node_of(item.target)
            if source != target:
                graph[source].add(target)
        return graph

    def evidence(self, source: str, target: str) -> list[Import]:
        """The imports behind the edge source -> target."""
        return [
            i for i in self.imports if node_of(i.module) == source and node_of(i.target) == target
        ]

    @property
    def local_imports(self) -> int:
        """Import statements inside functions (one statement may name several modules)."""
        return len({(i.module, i.line) for i in self.imports if i.local})

    def sizes(self) -> dict[str, int]:
        return {
            name: len(path.read_text(encoding="utf-8").splitlines())
            for name, path in self.modules.items()
        }


def scan(root: Path = DEFAULT_ROOT) -> Report:
    modules = module_names(root)
    known = set(modules)
    imports: list[Import] = []
    for name, path in modules.items():
        imports += imports_of(
            path.read_text(encoding="utf-8"),
            name,
            is_package=path.name == "__init__.py",
            known=known,
        )
    return Report(modules, imports)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through a component: start, ..., start."""
    members = set(component)
    start = component[0]
    # Breadth-first search back to `start` within the component gives a shortest cycle.
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]


def describe_cycle(report: Report, component: list[str]) -> str:
    """A cycle with the import behind each of its edges, to fix it from the message."""
    path = cycle_path(report.edges, component)
    lines = [f"{{{', '.join(component)}}}, e.g. " + " -> ".join(path)]
    for source, target in itertools.pairwise(path):
        for item in report.evidence(source, target)[:5]:
            where = "in a function" if item.local else "at the top"
            lines.append(f"  {item.module}:{item.line} imports {item.target} ({where})")
    return "\n".join(lines)


def render(report: Report) -> str:
    graph = report.edges
    sizes = report.sizes()
    biggest = max(sizes, key=lambda name: sizes[name])
    out = ["package graph (A -> B: A imports B):"]
    out += [f"  {node} -> {', '.join(sorted(graph[node])) or '-'}" for node in sorted(graph)]
    found = cycles(graph)
    out.append(f"cycles: {len(found)}")
    out += ["  " + describe_cycle(report, c).replace("\n", "\n  ") for c in found]
    out.append(f"function-local imports of amogate modules: {report.local_imports}")
    out.append(f"modules: {len(sizes)}")
    out.append(f"module size (lines): median {statistics.median(sizes.values()):g}")
    out.append(f"largest module: {biggest} ({sizes[biggest]} lines)")
    top = sorted(sizes.items(), key=lambda item: -item[1])[:5]
    out.append("five largest: " + ", ".join(f"{name} {lines}" for name, lines in top))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else DEFAULT_ROOT
    print(render(scan(root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
