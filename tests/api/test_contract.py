"""The API against its own OpenAPI document, as a newcomer would check it: the ``schemathesis``
command line against ``jobledger serve`` on each store, signed in as an admin, with every phase
(examples, coverage, fuzzing, stateful) and every check (``--checks all``: no 5xx, answers as
documented, valid data accepted, invalid data refused, 405 with a full ``Allow`` for other
methods, nothing served after a delete, a created job found at once, auth enforced...).

Schemathesis reads ``schemathesis.toml`` at the top of the checkout (what the document cannot
say: a claim's wait, If-Match's 412) and the hooks in ``contract_hooks.py`` (a claim's wait made
0, only time here). The seed is fixed so that a run can be repeated; give another with
``JOBLEDGER_CONTRACT_SEED`` (and more cases per operation with ``JOBLEDGER_CONTRACT_EXAMPLES``)
to look further. A failure shows schemathesis' report: each failure with its curl command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import on_backends
from tests.reliability.serving import ServeProcess, admin_token

ROOT = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).with_name("contract_hooks.py")
SEED = os.environ.get("JOBLEDGER_CONTRACT_SEED", "20261201")
EXAMPLES = os.environ.get("JOBLEDGER_CONTRACT_EXAMPLES", "50")
PHASES = ("examples", "coverage", "fuzzing", "stateful")
RUN_SECONDS = 480
#: A command reached on a real job: only the stateful phase's links lead there.
COMPLETED = re.compile(r'"POST /api/v1/jobs/[0-9a-f-]{36}/complete HTTP/1\.1" 200')


@pytest.mark.slow
@pytest.mark.timeout(RUN_SECONDS + 60)
@on_backends("sqlite", "postgresql")
def test_the_api_keeps_its_contract(store_url: str, tmp_path: Path) -> None:
    """On the stores a server runs on (the memory store shares every rule of the API layer, and
    a run costs over a minute)."""
    server = ServeProcess(store_url, tmp_path)
    try:
        token = admin_token(server.url)
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "--config-file", str(ROOT / "schemathesis.toml"),
                "--no-color",
                "run", f"{server.url}/openapi.json",
                "--header", f"Authorization: Bearer {token}",
                "--checks", "all",
                "--phases", ",".join(PHASES),
                "--max-examples", EXAMPLES,
                "--seed", SEED,
            ],
            cwd=tmp_path, env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
            capture_output=True, text=True, timeout=RUN_SECONDS,
        )  # fmt: skip
    finally:
        server.stop()
    report = run.stdout + run.stderr
    assert run.returncode == 0, f"schemathesis failed (seed {SEED}):\n{report}"
    for phase in PHASES:
        assert re.search(rf"✅ +{phase.title()}\b", report), f"{phase} did not pass:\n{report}"
    assert COMPLETED.search(server.output()), f"no job was completed through links:\n{report}"
    assert not server.unexpected_errors(), server.output()
