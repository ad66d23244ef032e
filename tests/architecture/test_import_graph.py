"""The house's rules (docs/architecture.md): arrows point down, no circles, small rooms.

Every module of `genai_meter` is parsed (not imported). A room may import the floor and rooms
below it, never a room beside or above it; `dashboards` and `alert_rules` never import each other;
no module-level import circle exists; `genai_meter` modules are imported at module level only
(an import inside a function would hide a circle); modules stay under ~400 lines unless their
docstring says they are a data table or generated.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "genai_meter"
MAX_LINES = 420

# Rank of each room: a module may import only rooms of a lower rank, or its own room.
ROOM_RANK: dict[str, int] = {
    "floor": 0,
    "conventions": 1, "pricing": 1, "promql": 1,
    "exporters": 2, "ledger": 2,
    "collector_processor.metering": 3,
    "collector_processor.forwarding": 4,
    "collector_processor.receiver": 5, "collector_processor.inprocess": 5,
    "collector_processor": 6,  # the package's public face re-exports its rooms
    "dashboards": 3, "alert_rules": 3,
    "reconcile": 3,  # provider reports: the floor, pricing and the ledger's public types; reports build on it
    "reports": 4, "generate": 4,
    "stack": 7,
    "cli": 8, "__main__": 9,
}
# Within the floor, the order of its modules (a floor module imports only those before it).
FLOOR_ORDER = ("periods", "money", "config_base", "config_pricing", "config_reconcile", "config_reports", "config", "records",
               "contract", "__init__")
NEVER = {("dashboards", "alert_rules"), ("alert_rules", "dashboards")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def room_of(module: str) -> str:
    if module in FLOOR_ORDER:
        return "floor"
    for size in (2, 1):
        candidate = ".".join(module.split(".")[:size])
        if candidate in ROOM_RANK and (size == 2 or candidate != "collector_processor" or module == candidate):
            return candidate
    return module.split(".")[0]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(module-level genai_meter imports, function-level ones) as (module, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: list[tuple[str, int]] = []
    nested: list[tuple[str, int]] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        names = [f"{base}.{a.name}" for a in node.names]
        return [n if n.removeprefix("genai_meter.") in MODULES else base for n in names]

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in targets(child):
                    if name.startswith("genai_meter.") or name == "genai_meter":
                        (nested if in_function else top).append((name.removeprefix("genai_meter."), child.lineno))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            else:
                walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    walk(tree, False)
    return top, nested


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_every_room_has_a_rank() -> None:
    assert sorted({room_of(m) for m in MODULES} - set(ROOM_RANK)) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_arrows_point_down(module: str) -> None:
    room = room_of(module)
    wrong = []
    for target, line in GRAPH[module][0]:
        if target == "genai_meter":
            target = "__init__"
        target_room = room_of(target)
        if (room, target_room) in NEVER:
            wrong.append(f"line {line}: {target} ({room} and {target_room} never import each other)")
        elif target_room == room:
            if room == "floor" and FLOOR_ORDER.index(target) >= FLOOR_ORDER.index(module):
                wrong.append(f"line {line}: {target} (floor order: {' < '.join(FLOOR_ORDER)})")
        elif ROOM_RANK[target_room] >= ROOM_RANK[room]:
            wrong.append(f"line {line}: {target} (room {target_room} is not below {room})")
    assert wrong == [], f"{module} imports upward or sideways"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_project_import_inside_a_function(module: str) -> None:
    assert GRAPH[module][1] == [], f"{module} imports genai_meter modules inside functions"


def test_no_import_circle() -> None:
    edges = {m: {t for t, _ in GRAPH[m][0] if t in MODULES and t != m} for m in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)
    # a package importing its own submodules is how re-exports work, not a circle
    real = [c for c in circles if not any(b.startswith(a + ".") or a.startswith(b + ".") for a, b in zip(c, c[1:]))]
    assert real == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_rooms_stay_small(module: str) -> None:
    text = MODULES[module].read_text(encoding="utf-8")
    lines = text.count("\n")
    head = (ast.get_docstring(ast.parse(text)) or "").lower()
    if "data table" in head or "generated" in head:
        return
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by job"
