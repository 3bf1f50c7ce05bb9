"""The package's layering: core <- ops <- models <- generations <- {data, interop, sampling} <- metrics
<- training <- apps. Every import inside ``zoo`` (function-local ones included) points downward, the
three middle siblings do not import each other, the import graph has no cycle, and Hydra is imported
only by the apps. The ``python -m`` modules outside ``zoo.apps`` only hand over to an app."""
import ast
import os
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "zoo")

# (layer rank, unit); units of equal rank may not import each other.
LAYERS = {
    "core": 0, "ops": 1, "models": 2, "generations": 3,
    "data": 4, "interop": 4, "sampling": 4, "metrics": 5, "training": 6, "apps": 7,
}
FACADE = "zoo"  # zoo/__init__.py: zoo.load and __version__; nothing inside the package imports it


def _modules():
    mods = {}
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_main_block(node) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _targets(module: str, node) -> list:
    """The zoo modules an Import / ImportFrom node names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "zoo"]
    is_pkg = MODULES[module].endswith("__init__.py")
    if node.level:
        base = module.split(".")
        base = base[:len(base) - node.level + (1 if is_pkg else 0)]
        base = ".".join(base + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != "zoo":
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _imports():
    """module -> [(target, line, in_main_block)] for every zoo-internal import, function-local included."""
    out = defaultdict(list)
    for module, path in MODULES.items():
        tree = ast.parse(open(path).read())
        main_nodes = {id(n) for top in tree.body if _is_main_block(top) for n in ast.walk(top)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for t in _targets(module, node):
                    out[module].append((t, node.lineno, id(node) in main_nodes))
    return out


IMPORTS = _imports()


def _unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return FACADE
    return "generations" if parts[1] == "registry" else parts[1]  # zoo.registry: the README's name for it


def test_every_module_belongs_to_a_layer():
    units = {_unit(m) for m in MODULES} - {FACADE, "bench", "report", "visualizer"}
    assert units <= set(LAYERS), f"modules outside the layers: {sorted(units - set(LAYERS))}"


def _entry_shim(module: str) -> bool:
    """A module whose whole body (after the docstring) is an ``if __name__ == '__main__':`` block."""
    body = ast.parse(open(MODULES[module]).read()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return len(body) == 1 and _is_main_block(body[0])


def test_python_m_modules_outside_the_apps_only_hand_over():
    """``python -m zoo.bench`` / ``zoo.report`` / ``zoo.visualizer`` / ``zoo.metrics`` / ``zoo.data.prepare`` /
    ``zoo.interop.convert``: nothing but a main block; ``zoo.interop.export`` is a library whose main
    block hands over too. Main blocks import from ``zoo.apps`` only."""
    for module in ("zoo.bench", "zoo.report", "zoo.visualizer", "zoo.metrics.__main__", "zoo.data.prepare.__main__", "zoo.interop.convert"):
        assert _entry_shim(module), module
    for module, imports in IMPORTS.items():
        for target, line, in_main in imports:
            if in_main:
                assert target.startswith("zoo.apps."), f"{module}:{line}: a main block imports {target}"


def test_imports_point_downward():
    bad = []
    for module, imports in IMPORTS.items():
        src = _unit(module)
        if module in ("zoo.bench", "zoo.report", "zoo.visualizer"):
            continue  # entry shims: their imports are all in main blocks (checked above)
        for target, line, in_main in imports:
            if in_main:
                continue
            dst = _unit(target)
            if dst == FACADE:
                bad.append(f"{module}:{line} imports the zoo facade ({target}); import the layer instead")
            elif src == FACADE:
                continue  # the facade may use any layer
            elif src == dst:
                continue  # inside one unit
            elif LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{module}:{line} ({src}, layer {LAYERS[src]}) imports {target} ({dst}, layer {LAYERS[dst]})")
    assert not bad, "\n".join(bad)


def test_the_import_graph_has_no_cycle():
    graph = {m: sorted({t for t, _, in_main in IMPORTS.get(m, []) if not in_main and t != m}) for m in MODULES}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in graph.get(m, []):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t in graph and state.get(t) is None:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if state.get(m) is None:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_hydra_is_imported_only_by_the_apps():
    offenders = []
    for module, path in MODULES.items():
        if _unit(module) == "apps":
            continue
        for node in ast.walk(ast.parse(open(path).read())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{module}:{node.lineno}" for n in names if n.split(".")[0] == "hydra"]
    assert not offenders, offenders


def test_every_module_imports():
    import importlib

    for module in sorted(m for m in MODULES if not m.endswith("__main__")):
        importlib.import_module(module)
