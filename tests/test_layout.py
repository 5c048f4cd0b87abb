"""The package's shape, checked: imports run one way (no circle, function-level imports included), the Dagster
layer writes no SQL, the core imports no Dagster, and no module outgrows a screenful of concepts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autointerp_dagster"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, modules: set[str]) -> set[str]:
    """Every project module `path` imports, at any depth of its code (functions included)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target not in modules:
                continue
            named = {f"{target}.{alias.name}" for alias in node.names} & modules  # `from pkg import module`
            found |= named or {target}
    return found - {module_name(path)}


def test_no_import_circle_in_the_package():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: project_imports(path, set(files)) for name, path in files.items()}
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for name in graph:
        if name not in index:
            visit(name)
    assert circles == [], f"import circles: {circles}"


def test_the_dagster_layer_writes_through_the_store():
    """Assets read, call the core, write through core/store and report metadata: no SQL, no row ownership."""
    for path in (PACKAGE / "assets").glob("*.py"):
        text = path.read_text()
        assert "replace_rows" not in text, f"{path.name} writes rows itself"
        for keyword in ("SELECT ", "DELETE ", "INSERT ", " WHERE "):
            assert keyword not in text, f"{path.name} holds SQL ({keyword.strip()})"


def test_core_does_not_import_dagster():
    code = ("import sys, pkgutil, importlib, autointerp_dagster.core as c\n"
            "for m in pkgutil.walk_packages(c.__path__, 'autointerp_dagster.core.'): importlib.import_module(m.name)\n"
            "print('dagster' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_is_over_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 420}
    assert long == {}
