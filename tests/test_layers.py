"""The package's layering, read from its own imports: one subpackage per stage, arrows pointing
down only, no import circle, and Sphinx at the edge.

Every ``import`` counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "sphinxext_qemudbus"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: Each stage and its floor: a module may import from its own stage and from lower floors only.
#: Stages on the same floor are independent of each other.
FLOORS = {
    "_version": 0,
    "_compat": 0,  # what the standard library gained after 3.9
    "diagnostics": 1,
    "model": 2,
    "check": 3,
    "compat": 3,
    "security": 3,
    "live": 3,
    "diagrams": 4,
    "sphinx": 5,
    "cli": 5,
    "__init__": 6,  # the Sphinx entry point: setup() imports sphinx/
    "__main__": 6,
}
#: Third-party packages only the Sphinx glue may import.
DOCS_TOOLCHAIN = ("sphinx", "docutils", "myst_parser")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stage(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            # ``from . import config`` imports the submodule config.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                if _exists(candidate):
                    yield node.lineno, candidate


def _exists(module: str) -> bool:
    if not module.startswith(PACKAGE + ".") and module != PACKAGE:
        return False
    relative = Path(*module.split(".")[1:])
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative / "__init__.py").is_file()


def _graph() -> dict[str, list[tuple[int, str]]]:
    graph: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        graph[_module_name(path)] = [
            (line, target) for line, target in _imports(path) if target == PACKAGE or target.startswith(PACKAGE + ".")
        ]
    return graph


def test_every_stage_has_a_floor() -> None:
    stages = {_stage(module) for module in _graph()}
    assert stages <= FLOORS.keys(), f"stages without a floor in FLOORS: {sorted(stages - FLOORS.keys())}"


def test_imports_point_down() -> None:
    wrong = []
    for module, imports in _graph().items():
        stage = _stage(module)
        for line, target in imports:
            other = _stage(target)
            if other == stage:
                continue
            if FLOORS[other] >= FLOORS[stage]:
                wrong.append(f"{module}:{line} imports {target} ({other}, floor {FLOORS[other]} >= {FLOORS[stage]})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle() -> None:
    modules = _graph_modules()
    graph = {module: sorted({t for _, t in imports if t in modules}) for module, imports in _graph().items()}
    # Tarjan's strongly connected components: any component of two or more modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target == module:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not circles, circles


def _graph_modules() -> set[str]:
    return {_module_name(path) for path in ROOT.rglob("*.py")}


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_toolchain_only_in_the_sphinx_glue(path: Path) -> None:
    if _stage(_module_name(path)) in ("sphinx", "__init__"):
        return  # the glue, and the entry point naming Sphinx's type (test_sphinx_isolation runs it)
    offending = [f"line {line}: {target}" for line, target in _imports(path) if target.split(".")[0] in DOCS_TOOLCHAIN]
    assert not offending, offending


def test_the_test_sees_the_arrows() -> None:
    """The graph reader itself: a known downward import and a known relative sibling import."""
    graph = _graph()
    assert any(target == f"{PACKAGE}.model.parser" for _, target in graph[f"{PACKAGE}.check.checker"])
    assert any(target == f"{PACKAGE}.sphinx.config" for _, target in graph[f"{PACKAGE}.sphinx"])
    assert any(target == f"{PACKAGE}.sphinx" for _, target in graph[PACKAGE])
