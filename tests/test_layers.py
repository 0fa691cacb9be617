"""Inner layers never import outer ones, and the benchmark scripts import each other without a
cycle (issue 18 item 3): read from the sources' import statements, not from a run."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "sentiment_metric"
LABEL_LAYER = {f"sentiment_metric.{m}" for m in ("_checks", "errors", "weighting", "wheel")}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, but those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node):
            children = list(node.orelse)
        stack.extend(children)
    return found


def _package_imports(path: pathlib.Path) -> set[str]:
    """The ``sentiment_metric`` modules (or packages) that the source at ``path`` imports."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            anchor = ".".join(parts[: len(parts) - node.level + 1])
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:  # `from . import x` imports the module x when there is one
            sub = f"{base}.{alias.name}"
            as_path = PACKAGE.parent / sub.replace(".", "/")
            module = as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists()
            found.add(sub if module else base)
    return {m for m in found if m.split(".")[0] == "sentiment_metric"}


def _sources(under: pathlib.Path) -> list[pathlib.Path]:
    return sorted(under.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(PACKAGE / "functional"), ids=lambda p: p.name)
def test_functional_imports_only_itself_and_the_label_layer(path: pathlib.Path) -> None:
    outer = {
        m
        for m in _package_imports(path)
        if m not in LABEL_LAYER and not m.startswith("sentiment_metric.functional")
    }
    assert not outer, f"{_module_name(path)} imports outer modules {sorted(outer)}"


@pytest.mark.parametrize("module", sorted(LABEL_LAYER))
def test_the_label_layer_imports_nothing_above_it(module: str) -> None:
    # issue 18: wheel.py imported functional.constraint.theta_matrix while functional/ builds
    # on the wheel; θ now lives in the label layer (sentiment_metric.weighting).
    path = PACKAGE / f"{module.rsplit('.', 1)[1]}.py"
    outer = _package_imports(path) - LABEL_LAYER
    assert not outer, f"{module} imports {sorted(outer)}"


def _benchmark_graph() -> dict[str, set[str]]:
    """Which benchmark scripts each one imports (at any depth: a lazy import counts)."""
    scripts = {p.stem: p for p in (ROOT / "benchmarks").glob("*.py")}
    graph: dict[str, set[str]] = {}
    for stem, path in scripts.items():
        names: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif node.module and not node.level:
                names.add(node.module.split(".")[0])
        graph[stem] = {n for n in names if n in scripts and n != stem}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(path: list[str]) -> list[str] | None:  # path: the import chain to its last node
        node = path[-1]
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit([*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit([start])):
            return found
    return None


def test_benchmark_scripts_import_each_other_without_a_cycle() -> None:
    # issue 18: efficacy.py and _pretrained.py imported each other.
    graph = _benchmark_graph()
    assert _cycle(graph) is None, f"import cycle among benchmarks/: {_cycle(graph)}"


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
