"""The package's shape, as the next person to change it relies on it: modules small enough
to read, imports that run one way, dialect differences in dialects/ only and errors that
carry data."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import setwise

PACKAGE = Path(setwise.__file__).resolve().parent

#: STYLE.md habit 16: a module over ~500 lines is two modules.
MAX_LINES = 500


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The setwise modules ``path`` imports, at run time (not under TYPE_CHECKING)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("setwise"):
                base = child.module or ""
                for alias in child.names:
                    whole = f"{base}.{alias.name}"
                    names.add(whole if whole in known else base)
            elif isinstance(child, ast.Import):
                names.update(a.name for a in child.names if a.name.startswith("setwise"))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in names if name in known}


def test_no_module_is_longer_than_the_limit() -> None:
    long = {
        name: lines
        for name, path in modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_cycle() -> None:
    known = modules()
    # The package's own __init__ loads its modules lazily, on first use of a name.
    graph = {name: imported(path, known) - {"setwise", name} for name, path in known.items()}
    cycles = []
    done: set[str] = set()

    def walk(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append([*trail[trail.index(name) :], name])
            return
        if name in done:
            return
        for target in sorted(graph[name]):
            walk(target, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        walk(name, [])
    assert cycles == []


def test_only_dialects_branch_on_a_dialect_name_or_the_journal_layout() -> None:
    branching = re.compile(
        r"dialect\.name\s*[=!]=|\.name\s*==\s*[\"'](postgresql|mysql|mariadb|sqlite)[\"']"
        r"|\bis_packed\(|\bis_mariadb\b"
    )
    found = [
        f"{name}:{number}"
        for name, path in modules().items()
        if not name.startswith("setwise.dialects")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if branching.search(line)
    ]
    assert found == []


def test_every_error_raised_is_a_subclass_that_carries_data() -> None:
    bare = [
        f"{name}:{number}"
        for name, path in modules().items()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"raise SetwiseError\(", line)
    ]
    assert bare == []
