"""The package's layers import downward only, without cycles; no module imports another
package's private module; and the lens, trees and benchmark read a fitted estimator through
its public face, never its private attributes. ``benchmarks/`` scripts are held to the same
rules as any code outside the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sktelescope"

#: What each layer may import from the package (besides itself). Order = layers, bottom up.
ALLOWED = {
    "_version": set(),
    "_cores": set(),
    "exceptions": set(),
    "_checks": set(),
    "_staged": set(),
    "_wrapped": set(),
    "_core": set(),
    "_mlp": {"_checks", "_core", "_staged", "_version", "exceptions"},
    "lens": {"_checks", "_core", "_mlp", "_staged", "_wrapped"},
    "trees": {"_checks", "_staged", "_wrapped"},
    "datasets": {"_checks"},
    "bench": {
        "_checks",
        "_core",
        "_cores",
        "_mlp",
        "_staged",
        "lens",
        "trees",
        "datasets",
        "exceptions",
    },
    "cli": {"__init__", "_cores", "_version", "bench", "datasets", "exceptions"},
    "__init__": {"_version", "_mlp", "bench", "datasets", "exceptions", "lens", "trees"},
    "__main__": {"cli"},
}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = _parse(path)
    return out


def _scripts() -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): _parse(p) for p in sorted((ROOT / "benchmarks").glob("*.py"))}


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


def _all_imports(tree: ast.Module) -> list[tuple[str, int]]:
    return _imports(tree, top_level=True) + _imports(tree, top_level=False)


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


def _private_module_of_another_package(importer_layer: str | None, target: str) -> bool:
    """``sktelescope.A.B...`` names a private module of package ``A`` (some ``B...`` starts
    with an underscore) and the importer is not inside ``A``. ``A`` itself may be private
    (``_core``, ``_mlp``): its face is its ``__init__`` and its public modules."""
    parts = target.split(".")
    if parts[0] != "sktelescope" or len(parts) < 3 or parts[1] == importer_layer:
        return False
    return any(part.startswith("_") for part in parts[2:])


def test_no_cross_package_import_of_a_private_module():
    bad = [
        f"{module}:{line} imports {target}"
        for module, tree in _modules().items()
        for target, line in _all_imports(tree)
        if _private_module_of_another_package(_layer(module), target)
    ]
    bad += [
        f"{script}:{line} imports {target}"
        for script, tree in _scripts().items()
        for target, line in _all_imports(tree)
        if _private_module_of_another_package(None, target)
    ]
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


def _private_names_of_the_estimator_layer() -> set[str]:
    """Every private method and attribute the classes of ``sktelescope/_mlp`` define."""
    names = set()
    for path in (PACKAGE / "_mlp").glob("*.py"):
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "self":
                    names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


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


def test_the_estimator_layer_defines_private_names():
    """The rule below checks something: the estimator layer has private names to protect."""
    assert {"_fit", "_split_validation", "_trained_rows"} <= _private_names_of_the_estimator_layer()


@pytest.mark.parametrize("layer", ["lens", "trees", "bench", "cli", "benchmarks"])
def test_upper_layers_read_no_private_attribute_of_estimators_runs_or_stages(layer):
    private = _private_names_of_the_estimator_layer()
    trees = _scripts() if layer == "benchmarks" else {
        m: t for m, t in _modules().items() if _layer(m) == layer
    }  # fmt: skip
    bad = [
        f"{module}:{line} reads .{attr}"
        for module, tree in trees.items()
        for attr, line in _private_reads(tree) if attr in private
    ]  # fmt: skip
    assert not bad, "\n".join(bad)
