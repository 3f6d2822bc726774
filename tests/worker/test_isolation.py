"""The SDK stands alone: it imports none of the server's packages (a worker machine needs only
httpx), checked in its source and in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import worker

SERVER_PACKAGES = {"domain", "projections", "api", "stores"}
SDK = Path(worker.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_sdk_module_imports_a_server_package() -> None:
    offenders = {
        path.name: sorted(imported_roots(path) & SERVER_PACKAGES) for path in SDK.glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_importing_the_sdk_loads_no_server_package() -> None:
    probe = (
        "import sys, worker, worker.runner, worker.client, worker.outbox\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {SERVER_PACKAGES!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
