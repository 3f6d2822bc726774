"""The peers' own virtual environment: ``bench/out/peers-venv``, from ``requirements.txt``.

Oban for Python needs Python >= 3.12 while the project runs on 3.11, so the venv is made with a
3.12 interpreter: ``JOBLEDGER_BENCH_PEERS_PYTHON``, else ``python3.12`` on the path, else the
newest pyenv 3.12, else ``python3`` (then Oban's install fails, and is reported). The venv is
reinstalled when ``requirements.txt`` changes. A peer that will not install or import is
reported with the reason, never skipped in silence.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent
REQUIREMENTS = PEERS_DIR / "requirements.txt"
VENV = PEERS_DIR.parent / "out" / "peers-venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".requirements"
#: Each peer's distribution and the module its script imports.
PACKAGES = {"procrastinate": "procrastinate", "pgqueuer": "pgqueuer", "oban": "oban"}
INSTALL_TIMEOUT_SECONDS = 600


@dataclass
class PeersVenv:
    """The venv's interpreter, each working peer's version, and why the others do not work."""

    python: Path
    versions: dict[str, str] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)


def interpreter() -> str:
    """A Python 3.12 (or newer) to make the venv with."""
    chosen = os.environ.get("JOBLEDGER_BENCH_PEERS_PYTHON") or shutil.which("python3.12")
    if chosen:
        return chosen
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3"))
    return str(pyenv[-1]) if pyenv else "python3"


def ensure() -> PeersVenv:
    """Creates or refreshes the venv; returns what works in it."""
    wanted = REQUIREMENTS.read_text()
    failures: list[str] = []
    if not PYTHON.exists() or not STAMP.exists() or STAMP.read_text() != wanted:
        failures = _install(wanted)
    venv = PeersVenv(PYTHON)
    for peer, module in PACKAGES.items():
        probe = _run(
            [str(PYTHON), "-c", f"import {module}; from importlib.metadata import version; "
             f"print(version({peer!r}))"],
        )  # fmt: skip
        if probe.returncode == 0:
            venv.versions[peer] = probe.stdout.strip()
        else:
            reasons = [*failures, probe.stderr.strip().splitlines()[-1] if probe.stderr else ""]
            venv.broken[peer] = "; ".join(r for r in reasons if r)[:300] or "does not import"
    return venv


def _install(wanted: str) -> list[str]:
    """(Re)creates the venv and installs every requirement; returns the lines that failed."""
    STAMP.unlink(missing_ok=True)
    print(f"peers: installing {REQUIREMENTS.name} into {VENV}", file=sys.stderr)
    if not PYTHON.exists():
        made = _run([interpreter(), "-m", "venv", str(VENV)])
        if made.returncode != 0:
            return [f"no venv: {made.stderr.strip()[-200:]}"]
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if _run([*pip, "-r", str(REQUIREMENTS)]).returncode == 0:
        STAMP.write_text(wanted)
        return []
    failed: list[str] = []
    for line in wanted.splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement and (done := _run([*pip, requirement])).returncode != 0:
            failed.append(f"pip install {requirement}: {done.stderr.strip()[-200:]}")
    return failed


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT_SECONDS
    )
