"""The house rules (issue 25), checked on every run: packages a newcomer can read, no module over 500 lines, at most
six modules at the top of ``anodet/``, no import cycle, and Streamlit only inside ``anodet.app``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "anodet"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, known: set[str], top_level_only: bool) -> set[str]:
    """The anodet modules ``path`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if top_level_only and isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports are not run
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("anodet"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("anodet"))
    return {m for m in found if m in known}


def test_no_module_is_over_500_lines():
    files = {**{name: path for name, path in modules().items()},
             **{f"app_pages.{p.stem}": p for p in (ROOT / "app_pages").glob("*.py")}, "app": ROOT / "app.py"}
    long = {name: n for name, path in files.items() if (n := len(path.read_text().splitlines())) > 500}
    assert not long, long


def test_the_top_of_anodet_holds_packages_and_at_most_six_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top


def test_no_import_cycle_at_module_level():
    known = modules()
    graph = {name: imports(path, set(known), top_level_only=True) - {name} for name, path in known.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # a package's __init__ importing its own modules is not a cycle between subsystems
    cycles = [c for c in cycles if len({".".join(m.split(".")[:2]) for m in c}) > 1 or len(c) > 2]
    assert not cycles, cycles


def test_only_the_app_package_imports_streamlit():
    outside = []
    for name, path in modules().items():
        if name.startswith("anodet.app"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                outside.append(name)
    assert not outside, outside
