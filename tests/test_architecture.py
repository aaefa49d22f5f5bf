"""The package's layers import downward only, without cycles, and the lens, trees and
benchmark read a fitted estimator through its public seam, never its private attributes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sktelescope"

#: What each layer may import from the package (besides itself). Order = layers, bottom up.
ALLOWED = {
    "_version": set(),
    "_cores": set(),
    "exceptions": set(),
    "_staged": set(),
    "_core": set(),
    "_mlp": {"_core", "_staged", "_version", "exceptions"},
    "lens": {"_core", "_mlp", "_staged"},
    "trees": {"_staged"},
    "datasets": set(),
    "bench": {"_core", "_cores", "_mlp", "_staged", "lens", "trees", "datasets", "exceptions"},
    "cli": {"__init__", "_cores", "_version", "bench", "datasets", "exceptions"},
    "__init__": {"_version", "_mlp", "bench", "datasets", "exceptions", "lens", "trees"},
    "__main__": {"cli"},
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = ast.parse(path.read_text(), str(path))
    return out


def _layer(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _imports(tree: ast.Module, top_level: bool) -> list[tuple[str, int]]:
    """``(imported module, line)`` of the module-level (or function-level) imports."""
    nodes = tree.body if top_level else [
        n for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
    ]  # fmt: skip
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
    return found


def test_layers_import_downward_only():
    bad = []
    for module, tree in _modules().items():
        layer = _layer(module)
        for target, line in _imports(tree, top_level=True):
            if target.startswith("sktelescope.") or target == "sktelescope":
                other = target.split(".")[1] if "." in target else "__init__"
                if other != layer and other not in ALLOWED[layer]:
                    bad.append(f"{module}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_module_imports_have_no_cycle():
    modules = _modules()
    graph = {
        m: {t for t, _ in _imports(tree, top_level=True) if t in modules and t != m}
        for m, tree in modules.items()
    }
    state: dict[str, int] = {}

    def visit(node, path):
        if state.get(node) == 1:
            pytest.fail("import cycle: " + " -> ".join([*path, node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        state[node] = 2

    for module in graph:
        visit(module, [])


def test_no_function_imports_the_package_except_the_lazy_entry_points():
    """Lazy imports of optional or heavy libraries are fine; of the package itself they would
    hide a cycle (the CLI and ``__init__`` import lazily to stay fast, by design)."""
    bad = [
        f"{module}:{line} imports {target} inside a function"
        for module, tree in _modules().items() if _layer(module) not in ("cli", "__init__")
        for target, line in _imports(tree, top_level=False) if target.split(".")[0] == "sktelescope"
    ]  # fmt: skip
    assert not bad, "\n".join(bad)


def _private_reads(tree: ast.Module) -> list[tuple[str, int]]:
    """``obj._name`` where ``obj`` is not ``self``/``cls`` nor an imported module."""
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {alias.asname or alias.name for n in imports for alias in n.names}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")):
            continue
        if node.attr.startswith("__") or node.attr in ("_fields", "_asdict", "_replace"):
            continue
        base = node.value
        if isinstance(base, ast.Name) and (base.id in ("self", "cls") or base.id in modules):
            continue
        found.append((node.attr, node.lineno))
    return found


@pytest.mark.parametrize("layer", ["lens", "trees", "bench"])
def test_upper_layers_read_no_private_attribute_of_estimators_or_stages(layer):
    estimator_private = {"_fit", "_store", "_tensor_maker", "_encode_targets", "_loss_function",
                         "_labels", "_to_output", "_to_network", "_use_early_stopping",
                         "_validate_y_kwargs", "_run", "_estimator", "_target_indices",
                         "_validate_features", "_validate_features_and_targets"}  # fmt: skip
    bad = [
        f"{module}:{line} reads .{attr}"
        for module, tree in _modules().items() if _layer(module) == layer
        for attr, line in _private_reads(tree) if attr in estimator_private
    ]  # fmt: skip
    assert not bad, "\n".join(bad)
