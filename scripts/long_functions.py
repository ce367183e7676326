"""List the functions of the product packages (shared/ datagen/ trainer/) longer than a limit.

Usage:  python scripts/long_functions.py [--limit 80]
Prints `lines path:line name [njit]` per function (nested ones included), longest first; numba
kernels are marked `njit` (the project's rule excepts them); exit 1 when another function is over.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "datagen", "trainer")


def long_functions(limit: int):
    """[(lines, 'path:line', name, is_numba_kernel)] of every function over `limit` lines."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > limit:
                        numba = any("njit" in ast.unparse(d) for d in node.decorator_list)
                        found.append((lines, f"{path.relative_to(ROOT)}:{node.lineno}", node.name, numba))
    return sorted(found, reverse=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=80)
    args = ap.parse_args(argv)
    found = long_functions(args.limit)
    for lines, where, name, numba in found:
        print(f"{lines:4d} {where} {name}{' njit' if numba else ''}")
    return 1 if any(not numba for *_, numba in found) else 0


if __name__ == "__main__":
    sys.exit(main())
