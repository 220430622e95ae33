"""The package has no import cycle, counting imports at module level and inside functions.

The graph is read from the source (``ast``), so nothing is imported; a function-level import
still makes a cycle (it only postpones it). ``python -m tests.test_import_graph`` prints it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "activessf"


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, dict[str, set[str]]]:
    """``{"module": {a: {b, ...}}, "function": {...}}``: package-internal imports by where they sit."""
    graph: dict[str, dict[str, set[str]]] = {"module": defaultdict(set), "function": defaultdict(set)}

    def resolve(name: str) -> str | None:  # the longest package module the name starts with
        parts = name.split(".")
        return next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in mods), None)

    def visit(node: ast.AST, module: str, package: str, level: str) -> None:
        for child in ast.iter_child_nodes(node):
            where = "function" if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else level
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in child.names]
            for name in names:
                target = resolve(name)
                if target and target != module:
                    graph[where][module].add(target)
            visit(child, module, package, where)

    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        visit(ast.parse(path.read_text(encoding="utf-8")), module, package, "module")
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative enough for a package)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            strong(v)
    return found


def both(graph: dict[str, dict[str, set[str]]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = defaultdict(set)
    for edges in graph.values():
        for a, targets in edges.items():
            merged[a] |= targets
    return merged


def test_no_import_cycles():
    graph = import_graph(modules())
    assert sum(map(len, graph["module"].values())) > 100  # the graph was read
    assert cycles(graph["module"]) == []
    assert cycles(both(graph)) == []


def test_a_cycle_is_found(tmp_path):
    pkg = tmp_path / "activessf"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from activessf.sub.b import f\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import a\n")
    graph = import_graph(modules(pkg))
    assert cycles(graph["module"]) == []
    assert cycles(both(graph)) == [["activessf.sub.a", "activessf.sub.b"]]


if __name__ == "__main__":
    g = import_graph(modules())
    print(f"{len(modules())} modules; {sum(map(len, g['module'].values()))} module-level and "
          f"{sum(map(len, g['function'].values()))} function-level package-internal import edges")
    print("module-level cycles:", cycles(g["module"]))
    print("module + function-level cycles:", cycles(both(g)))
