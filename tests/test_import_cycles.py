"""No import cycle in the package, lazy imports included.

Every ``import`` of every module of jasr_video is collected with ast (module level, inside functions, and under
``if TYPE_CHECKING``), giving the graph module -> modules it imports; the test fails on any cycle and names it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import jasr_video

PACKAGE = Path(jasr_video.__file__).resolve().parent


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _known(name: str, mods: dict[str, Path]) -> str | None:
    """The package module `name` is, or is inside (``jasr_video.types.Frame`` -> ``jasr_video.types``)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its source."""
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(filter(None, (_known(a.name, mods) for a in node.names)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:  # `from . import layout` imports the module jasr_video.layout
                    target = f"{source}.{alias.name}" if f"{source}.{alias.name}" in mods else _known(source, mods)
                    if target:
                        targets.add(target)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) per strongly connected group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:  # a shortest path back to the start, inside the group
        start = min(group)
        paths = {start: [start]}
        frontier = [start]
        while frontier and start not in {w for v in frontier for w in graph[v]}:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & group):
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
            frontier = nxt
        last = next(v for v in frontier if start in graph[v])
        cycles.append(paths[last] + [start])
    return cycles


def test_walker_sees_lazy_and_relative_imports():
    graph = import_graph(modules())
    assert "jasr_video.model.onnx_backend" in graph["jasr_video.model.backends"]  # module level, relative
    assert "jasr_video.regions" in graph["jasr_video.detect"]  # inside a method
    assert "jasr_video.layout" in graph["jasr_video.sinks"]  # `from . import layout`
    assert "jasr_video.model.checkpoint" in graph["jasr_video.detect"]  # `from .model.checkpoint import ...`


def test_find_cycles_finds_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycles = find_cycles(import_graph(modules()))
    assert not cycles, "import cycles (lazy imports included): " + "; ".join(" -> ".join(c) for c in cycles)
