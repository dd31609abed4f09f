"""Mutation scores of the critical rules, and their surviving mutants.

    python -m tools.mutation_report            # the report, after `mutmut run`
    python -m tools.mutation_report --targets  # the rules' mutant globs, for `mutmut run`

MUTATE_RULES="retry policy,error classification" limits both to those rules.

The rules and the functions (mutmut's mutant names, as globs) that hold them are
`[tool.amogate.mutation.rules]` in pyproject.toml; results come from mutmut's
`mutants/<module>.meta`. A mutant is caught when a test failed on it (killed), it hung the tests
(timeout) or broke typing; one that no selected test ran ("no tests") counts as a survivor.
`mutmut show NAME` prints a survivor's change.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

from mutmut.stats import status_by_exit_code

CAUGHT = ("killed", "timeout", "caught by type check")


def config(root: Path) -> dict[str, object]:
    loaded: dict[str, object] = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))
    return loaded


def rules(root: Path) -> dict[str, list[str]]:
    tool = config(root)["tool"]
    assert isinstance(tool, dict)
    found: dict[str, list[str]] = tool["amogate"]["mutation"]["rules"]
    wanted = [r.strip() for r in os.environ.get("MUTATE_RULES", "").split(",") if r.strip()]
    unknown = set(wanted) - set(found)
    if unknown:
        sys.exit(f"unknown rule(s) {sorted(unknown)}; known: {sorted(found)}")
    return {rule: globs for rule, globs in found.items() if not wanted or rule in wanted}


def statuses(root: Path) -> dict[str, str]:
    """Every mutant's status, from the .meta file of each mutated module."""
    found: dict[str, str] = {}
    for meta in (root / "mutants").rglob("*.py.meta"):
        codes: dict[str, int | None] = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        found.update({name: status_by_exit_code[code] for name, code in codes.items()})
    return found


def report(root: Path) -> int:
    results = statuses(root)
    print(f"{'rule':24} {'mutants':>7} {'caught':>6} {'score':>6}")
    totals: Counter[str] = Counter()
    survivors: list[tuple[str, str, str]] = []
    for rule, globs in rules(root).items():
        mine = {n: s for n, s in results.items() if any(fnmatch(n, g) for g in globs)}
        counts = Counter(mine.values())
        totals.update(counts)
        caught = sum(counts[s] for s in CAUGHT)
        score = f"{100 * caught / len(mine):5.1f}%" if mine else "  n/a"
        print(f"{rule:24} {len(mine):7} {caught:6} {score:>6}")
        survivors += sorted((rule, n, s) for n, s in mine.items() if s not in CAUGHT)
    total, caught = sum(totals.values()), sum(totals[s] for s in CAUGHT)
    if not total:
        print("no results: run `make mutate`")
        return 1
    print(f"{'all':24} {total:7} {caught:6} {100 * caught / total:5.1f}%   {dict(totals)}")
    print(f"\n{len(survivors)} surviving mutants (`mutmut show NAME` shows one):")
    for rule, name, status in survivors:
        print(f"  {rule:24} {name}  [{status}]")
    return 0


def main(argv: list[str]) -> int:
    root = Path()
    if argv[1:] == ["--targets"]:
        print(" ".join(g for globs in rules(root).values() for g in globs))
        return 0
    return report(root)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
