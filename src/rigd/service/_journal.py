"""The journal of runs: one JSON line per change of a run, kept across restarts.

``<data_dir>/runs.jsonl``: a run's last line is how it stands. A run that
was under way when the daemon died (killed, crashed) is ``recovered`` at the
next start, with the frames its repaired files hold.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rigd.pipeline import RunState
from rigd.service._records import RunRecord
from rigd.storage import recover_run

__all__ = ["RUNS_JOURNAL", "RunJournal"]

log = logging.getLogger(__name__)

RUNS_JOURNAL = "runs.jsonl"


class RunJournal:
    """The runs of the daemon whose data directory is ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / RUNS_JOURNAL

    def load(self) -> dict[str, RunRecord]:
        """Every run, by id, oldest first; runs left under way are recovered (and noted)."""
        runs: dict[str, RunRecord] = {}
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return runs
        for line in lines:
            try:
                record = RunRecord(**json.loads(line))
            except (ValueError, TypeError):
                log.warning("skipping a damaged line of %s", self.path)
                continue
            runs[record.run_id] = record  # a run's last line is how it stands
        for record in runs.values():
            if record.active:
                self._recover(record)
        return runs

    def append(self, record: RunRecord) -> None:
        """Note how ``record`` stands now (an error is logged: the run goes on)."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(record.to_dict()) + "\n")
        except OSError as exc:
            log.error("could not note run %s in %s: %s", record.run_id, self.path, exc)

    def _recover(self, record: RunRecord) -> None:
        """A run the daemon did not live to finish: ``recovered``, with what its files hold."""
        frames: dict[str, int] = {}
        for path in record.files:
            try:
                report = recover_run(path)  # repaired at start-up already: this reads it
            except (OSError, ValueError) as exc:
                log.warning("run %s: cannot read %s: %s", record.run_id, path, exc)
                continue
            for stream, n in report.frames.items():
                frames[stream] = frames.get(stream, 0) + n
        record.move(RunState.RECOVERED)
        record.frames = frames or record.frames
        record.failure = (
            "the daemon stopped during this run (killed or crashed); its files were repaired "
            "at the next start and keep every frame that reached the disk"
        )
        self.append(record)
