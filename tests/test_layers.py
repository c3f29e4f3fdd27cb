"""The layers stay apart: protocol (no Qt), server (no widgets), client core (no server), widgets on top.

Each rule is checked twice: in the source (every import statement of every module of the
package, lazy ones inside functions included) and at run time (what importing the whole
package loads, in a fresh interpreter).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qtchat"


def imported(path: Path) -> set[str]:
    """Every module an import statement in the file names (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def modules_of(package: str, *, scripts: bool = False) -> list[Path]:
    files = sorted((PACKAGE / package).glob("*.py"))
    return [f for f in files if scripts or f.name != "__main__.py"]


def offending(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for f in files:
        bad = sorted(n for n in imported(f) if n.startswith(forbidden))
        if bad:
            found[str(f.relative_to(ROOT))] = bad
    return found


def loaded_after_import(modules: list[str]) -> set[str]:
    code = "import sys, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + \
        "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def package_modules(package: str) -> list[str]:
    return [f"qtchat.{package}.{f.stem}" for f in modules_of(package) if f.stem != "__init__"]


SERVER_MUST_NOT = ("PySide6.QtWidgets", "PySide6.QtGui", "qtchat.ui", "qtchat.client", "qtchat.hosting",
                   "qtchat.server_app")
CLIENT_MUST_NOT = ("qtchat.server", "qtchat.ui", "qtchat.hosting", "qtchat.server_app", "PySide6.QtWidgets")
PROTOCOL_MUST_NOT = ("PySide6", "shiboken6", "qtchat.server", "qtchat.client", "qtchat.ui")
# the conformance suite: qtchat.protocol and the standard library only (plain sockets, no Qt)
CONFORMANCE_MUST_NOT = (*PROTOCOL_MUST_NOT, "qtchat.hosting", "qtchat.server_app", "qtchat.tls", "qtchat.sysutil",
                        "qtchat.assets")


@pytest.mark.parametrize(("package", "forbidden"), [
    ("protocol", PROTOCOL_MUST_NOT), ("server", SERVER_MUST_NOT), ("client", CLIENT_MUST_NOT),
    ("conformance", CONFORMANCE_MUST_NOT),
])
def test_no_module_imports_a_layer_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    assert modules_of(package)
    assert offending(modules_of(package), forbidden) == {}


@pytest.mark.parametrize(("package", "forbidden"), [
    ("protocol", PROTOCOL_MUST_NOT), ("server", SERVER_MUST_NOT), ("client", CLIENT_MUST_NOT),
    ("conformance", CONFORMANCE_MUST_NOT),
])
def test_importing_a_layer_loads_nothing_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    loaded = loaded_after_import(package_modules(package))
    assert f"qtchat.{package}" in loaded
    assert sorted(m for m in loaded if m.startswith(forbidden)) == []


def test_the_checks_see_a_violation() -> None:
    # the source check reads lazy imports inside functions too: the composition module has one
    assert "qtchat.ui.admin_window" in imported(PACKAGE / "server_app.py")
    assert offending([PACKAGE / "server_app.py"], ("qtchat.ui",)) != {}


def test_only_the_composition_modules_join_the_server_with_a_client_or_widgets() -> None:
    joins = {str(f.relative_to(ROOT)) for f in PACKAGE.glob("*.py")
             if offending([f], ("qtchat.server",)) and offending([f], ("qtchat.ui", "qtchat.client", "PySide6.QtWidgets"))}
    assert joins <= {"qtchat/hosting.py", "qtchat/server_app.py"}
    # and the widgets reach the server only through its package's public names and the operator facade
    internals = ("qtchat.server.core", "qtchat.server.peer", "qtchat.server.rooms", "qtchat.server.accounts",
                 "qtchat.server.store", "qtchat.server.sqlite_backend")
    assert offending(sorted((PACKAGE / "ui").glob("*.py")), internals) == {}


def test_protocol_rules_come_from_the_protocol() -> None:
    # password and name rules: the widgets and the client core never ask the server's modules
    assert offending(sorted((PACKAGE / "ui").glob("*.py")) + modules_of("client"),
                     ("qtchat.server.accounts", "qtchat.server.auth")) == {}
