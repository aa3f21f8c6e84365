"""The dependency rule: node -> consensus, p2p, config; nothing points back up.

consensus/ is also sans-I/O: no trio, sockets, clocks, global randomness or lmdb inside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("node", "consensus", "p2p", "config")
ALLOWED = {
    "config": set(),
    "consensus": set(),
    "p2p": set(),
    "node": {"consensus", "p2p", "config"},
}
CONSENSUS_FORBIDDEN = {"trio", "socket", "time", "random", "lmdb", "asyncio", "threading", "os"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_it_may(layer: str) -> None:
    bad = []
    for path in _modules(layer):
        ours = _imports(path) & set(LAYERS) - {layer}
        if ours - ALLOWED[layer]:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(ours - ALLOWED[layer])}")
    assert not bad, "layer rule broken:\n" + "\n".join(bad)


def test_consensus_is_sans_io() -> None:
    bad = []
    for path in _modules("consensus"):
        found = _imports(path) & CONSENSUS_FORBIDDEN
        if found:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(found)}")
    assert not bad, "consensus/ must stay sans-I/O:\n" + "\n".join(bad)


def test_every_layer_exists() -> None:
    for layer in LAYERS:
        assert _modules(layer), f"{layer}/ has no modules"
