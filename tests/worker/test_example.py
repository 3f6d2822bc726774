"""The README's worker example, as a newcomer runs it: ``jobledger worker`` from the project's
folder with ``--handlers examples.voters:handlers``, on jobs made as the README makes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.served import Api
from tests.worker.test_handlers import WAIT_SECONDS, finished

PROJECT = Path(__file__).parents[2]


def test_the_example_imports_the_csv_with_its_bad_rows_and_geocodes_on_a_retry(
    api: Api, tmp_path: Path
) -> None:
    voters = api.create(
        "import_voters", data={"file": "examples/voters.csv", "secondsPerRow": 0}
    )
    place = api.create("geocode", data={"address": "10 Downing Street, London"})
    log = tmp_path / "worker.log"
    command = [
        str(Path(sys.executable).with_name("jobledger")), "worker", "--url", api.url,
        "--handlers", "examples.voters:handlers", "--concurrency", "4",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT, env={**os.environ, "JOBLEDGER_TOKEN": api.token},
            stdout=output, stderr=output,
        )  # fmt: skip
    try:
        imported, geocoded = finished(api, voters), finished(api, place)
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(WAIT_SECONDS)
    assert status == 0, log.read_text()
    assert imported["status"] == "completed", imported
    assert imported["result"] == {"imported": 8, "rejected": 2}
    assert (imported["processedItems"], imported["totalItems"]) == (10, 10)
    assert [(e["item"], e["message"]) for e in imported["errorLog"]] == [
        ("row 4", "no email"), ("row 7", "bad zip code '1060'"),
    ]  # fmt: skip
    assert geocoded["status"] == "completed", geocoded
    assert [(a["attempt"], a["outcome"]) for a in geocoded["attempts"]] == [
        (1, "failed"), (2, "completed"),
    ]  # fmt: skip
    assert geocoded["attempts"][0]["error"].startswith("ConnectionError: the geocoder timed out")
    assert api.event_types(place) == ["Created", "Started", "AttemptFailed", "Started", "Completed"]
