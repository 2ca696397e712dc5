"""The package layering (README "Layout"), read from the source: dependencies point one way, no cycles.

Bottom to top: the helpers with no powerstrip imports (``http``, ``logtext``, ``gatewayinfo``,
``optiongroups``) ← ``canonical``, ``config`` ← ``hooks`` ← ``sdk``, ``proxy`` ← ``observability`` ← the
built-in mechanism (``powerstrip.adapters`` itself and its ``messages``) ← the built-in adapters ←
``runtime`` ← ``app`` ← the command line (``cli.py``, ``__main__`` and every adapter's ``cli`` module,
which are its subcommands). Imports are read where they are written, inside functions too, and those
under ``if TYPE_CHECKING:`` count like the others: a type hint that names a layer above is an upward
dependency too (the proxy declares what it needs of the runtime in ``proxy.generation``).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "powerstrip"
LAYERS = (
    ("powerstrip", "http", "logtext", "gatewayinfo", "optiongroups"),
    ("canonical", "config"),
    ("hooks",),
    ("sdk", "proxy"),
    ("observability",),
    ("adapters",),
    ("builtins",),
    ("runtime",),
    ("app",),
    ("cli",),
)
_CLI_MODULE = re.compile(r"^powerstrip\.(cli|__main__|adapters\.[a-z_]+\.([a-z_]+_)?cli)$")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    type_only: bool

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}" + (" (TYPE_CHECKING)" if self.type_only else "")


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges() -> list[Edge]:
    edges = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        type_only = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(branch.test) for stmt in branch.body for node in ast.walk(stmt)}
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]) if node.level \
                    else node.module or ""
                base = base.rstrip(".")
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
            else:
                continue
            for name in names:
                target = _resolve(name) if name.startswith("powerstrip") else None
                if target is not None and target != module:
                    edges.append(Edge(module, target, node.lineno, id(node) in type_only))
    return edges


EDGES = _edges()


def unit(module: str) -> str:
    """The package a module belongs to for the layering: a built-in adapter counts as one unit."""
    if _CLI_MODULE.match(module):
        return "cli"
    parts = module.split(".")
    if len(parts) == 1:
        return "powerstrip"
    if parts[1] == "adapters" and len(parts) > 2 and parts[2] != "messages":
        return f"adapters.{parts[2]}"
    return parts[1]


def layer(module: str) -> int:
    name = unit(module)
    name = "builtins" if name.startswith("adapters.") else name
    for index, members in enumerate(LAYERS):
        if name in members:
            return index
    raise AssertionError(f"{module}: in no layer of {LAYERS} (add it where it belongs)")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for after in graph.get(node, ()):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_source_was_read() -> None:
    assert {"powerstrip.cli", "powerstrip.http.machine", "powerstrip.adapters.net.adapter"} <= MODULES.keys()
    assert any(e.source == "powerstrip.app" and e.target == "powerstrip.runtime.generations" for e in EDGES)
    assert any(e.type_only for e in EDGES)


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer(module)


def test_imports_point_down() -> None:
    upward = [str(e) for e in EDGES if layer(e.target) > layer(e.source)]
    assert upward == []


@pytest.mark.parametrize("granularity", ["module", "package"])
def test_no_import_cycles(granularity: str) -> None:
    key = (lambda m: m) if granularity == "module" else unit
    graph: dict[str, set[str]] = defaultdict(set)
    for e in EDGES:
        if key(e.source) != key(e.target):
            graph[key(e.source)].add(key(e.target))
    assert _cycles(graph) == []


def test_below_the_command_line_only_the_builtins_name_a_builtin() -> None:
    """The generic layers (the built-in mechanism and its context, runtime, app, ...) name no adapter's
    types, not even for type hints: a built-in's settings travel in ``BuiltinContext.settings``."""
    named = [str(e) for e in EDGES if unit(e.target).startswith("adapters.")
             and not unit(e.source).startswith("adapters.") and unit(e.source) != "cli"]
    assert named == []
