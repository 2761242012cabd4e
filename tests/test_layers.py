"""The package's import graph: no cycle, and no arrow pointing up the layers of DESIGN.md.

Every ``import`` counts, also those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import contrastkit

ROOT = Path(contrastkit.__file__).parent

#: DESIGN.md's layers, top to bottom; arrows only point down (or stay inside a layer).
LAYERS: list[tuple[str, ...]] = [
    ("cli",),
    ("app",),
    ("recipes",),
    ("train",),
    ("evaluate",),
    ("index",),
    # the toolbox: knows nothing of recipes, the trainer or the app
    (
        "losses",
        "miners",
        "memory",
        "heads",
        "encoders",
        "augment",
        "data",
        "distributed",
        "distances",
        "pairs",
        "neighbours",
        "_checks",
        "_io",
    ),
]
RANK = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that ``name`` imports (a ``from pkg import sub`` names ``pkg.sub``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text())
    typing_only = {  # `if TYPE_CHECKING:` imports are annotations, not dependencies
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_subpackage_has_a_layer():
    missing = {layer(m) for m in modules()} - set(RANK) - {None, "__main__"}
    assert not missing, f"add {sorted(missing)} to LAYERS (and to DESIGN.md's layer picture)"


def test_no_upward_import():
    upward = []
    for src, targets in graph().items():
        a = layer(src)
        if a not in RANK:
            continue
        for dst in targets:
            b = layer(dst)
            if b in RANK and RANK[b] < RANK[a]:
                upward.append(f"{src} -> {dst}")
    assert not upward, "imports that point up the layers:\n" + "\n".join(sorted(upward))


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycle_between_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_layers_parts():
    parts: dict[str, set[str]] = {}
    for src, targets in graph().items():
        a = layer(src)
        parts.setdefault(a, set()).update(b for t in targets if (b := layer(t)) and b != a)
    cycle = find_cycle({k: v for k, v in parts.items() if k})
    assert cycle is None, "subpackages import each other: " + " -> ".join(cycle)


def test_the_checker_sees_a_cycle_and_an_upward_arrow():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert RANK["train"] < RANK["losses"]  # train sits above the toolbox


def test_architecture_md_names_every_layer():
    text = (ROOT.parents[1] / "ARCHITECTURE.md").read_text()
    named = {name for names in LAYERS for name in names if not name.startswith("_")}
    missing = sorted(n for n in named if n not in text)
    assert not missing, f"ARCHITECTURE.md does not mention {missing}"
