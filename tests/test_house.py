"""The layout rules of docs/architecture.md, checked on the code itself."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

COMPONENTS = ROOT / "components"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(COMPONENTS.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The app's modules ``name`` imports anywhere: at module level and inside functions (an import
    put off until a function runs is still a dependency, and a cycle through it is still a cycle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("components"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("components"))
    return {m for m in found if m in modules and m != name}


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in COMPONENTS.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_imports_inside_functions_are_counted(tmp_path):
    """The reader sees an import put off into a function (the way a cycle hides)."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from .b import g\n    import components.c\n")
    modules = {"components.a.m": path, "components.a.b": path, "components.c": path}
    assert _imports("components.a.m", path, modules) == {"components.a.b", "components.c"}


def test_no_import_cycles():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_concepts_never_import_views():
    modules = _modules()
    offenders = {m: sorted(d for d in _imports(m, p, modules) if d.startswith("components.views"))
                 for m, p in modules.items()
                 if not m.startswith("components.views") and m != "components.ui"}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_the_architecture_doc_names_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(COMPONENTS)) for p in COMPONENTS.rglob("*.py")
               if p.name != "__init__.py" and p.name not in doc]
    assert missing == []
