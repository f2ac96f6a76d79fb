"""agent/net is a low room: ipfs, lists, sources and alerts import it, so it imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import agent.net

NET = Path(agent.net.__file__).parent


def _agent_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.add("agent.net")  # relative imports stay inside the package
    return {n for n in names if n == "agent" or n.startswith("agent.")}


def test_net_imports_only_itself() -> None:
    modules = sorted(NET.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "guard.py", "retry_after.py"}
    for module in modules:
        # The package root only for __version__ (the User-Agent): it is loaded with any agent module.
        outside = {n for n in _agent_imports(module) if not n.startswith("agent.net") and n != "agent"}
        assert not outside, f"{module.name} imports {sorted(outside)}"
