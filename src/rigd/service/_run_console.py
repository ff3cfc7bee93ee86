"""``rigd run --console PORT [PIPELINE.yaml]``: a foreground run with the console.

The run goes through the daemon's own code, so the console at
``http://127.0.0.1:PORT/console`` is the very page ``rigd serve`` serves: a
daemon bound to loopback on PORT, its data directory the current one (run
files land where ``rigd run`` puts them), its journal (``runs.jsonl``) and
the run's log beside the run file (in the recorder's directory, as ``rigd
run`` puts its log; in a scratch directory removed at exit when nothing
records: never in the current directory), a fresh token printed on stderr, the
pipeline loaded and started; when the run ends (its sources finish, it
fails, or the console's Stop button), or at Ctrl-C (the run is stopped
cleanly), the daemon stops and the command exits: 0 for a complete run, 1 for
a failed one, 130 after Ctrl-C.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rigd.pipeline import Plan

__all__ = ["run_with_console"]

_READY_S = 60.0


def run_with_console(
    path: str | None, port: int, *, run_id: str | None, metadata: Mapping[str, Any]
) -> int:
    """Serve the console on loopback ``port`` while one run of ``path`` goes on."""
    from rigd._exceptions import NotFoundError
    from rigd.config import PipelineFileError
    from rigd.pipeline import plan_pipeline
    from rigd.service._pipeline_names import run_pipeline_file
    from rigd.service._run import DEMO_PIPELINE
    from rigd.service._serve import serve
    from rigd.service._token import ensure_token

    try:  # a file, or a pipeline's name, as `rigd load` takes it
        source = run_pipeline_file(path).resolve() if path else DEMO_PIPELINE
    except NotFoundError as exc:
        print(f"rigd run: {exc}; nothing was started", file=sys.stderr)
        return 2
    if not 0 < port < 65536:
        print(f"rigd run: --console takes a TCP port (1-65535), got {port}", file=sys.stderr)
        return 2
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        plan = plan_pipeline(source)
    except FileNotFoundError:
        print(f"rigd run: no pipeline file {source}", file=sys.stderr)
        return 2
    except PipelineFileError as exc:
        print(f"rigd run: {source}: {exc}", file=sys.stderr)
        return 2
    modules = sorted({a.cls.__module__.split(".")[0] for a in plan.actors} | {"rigd"})
    outcome: dict[str, Any] = {"state": None}
    with tempfile.TemporaryDirectory(prefix="rigd-console-") as scratch:
        token_file = Path(scratch) / "token"
        token = ensure_token(token_file)
        config = Path(scratch) / "service.yaml"
        config.write_text(
            json.dumps(
                {
                    "bind": "127.0.0.1",
                    "port": port,
                    "token_file": str(token_file),
                    "data_dir": os.getcwd(),
                    "state_dir": str(_state_dir(plan, Path(scratch))),
                    "runtime_dir": str(Path(scratch) / "run"),
                    "pipeline_dirs": [str(source.parent)],
                    "bundled_pipelines": False,
                    "allowed_modules": modules,
                }
            )
        )
        taken = _port_taken(port)
        if taken:
            print(f"rigd run: --console {port}: {taken}", file=sys.stderr)
            return 2
        print(
            f"rigd run: console on http://127.0.0.1:{port}/console (token {token}); "
            "Ctrl-C stops the run cleanly",
            file=sys.stderr,
        )
        driver = threading.Thread(
            target=_drive,
            args=(f"http://127.0.0.1:{port}", token, source.name, run_id, metadata, outcome),
            name="rigd-run-console",
            daemon=True,
        )
        driver.start()
        # The data directory is the current one: its other HDF5 files are not
        # rigd's to repair, as `rigd run` leaves them alone.
        status = serve(str(config), recover=False)
    if status != 0:
        return status
    if outcome["state"] is None:
        return 130  # stopped before the run ended: Ctrl-C
    return 0 if outcome["state"] == "complete" else 1


def _port_taken(port: int) -> str | None:
    """Why the console's daemon could not listen on loopback ``port`` (as its ``_bind``
    binds it: ``SO_REUSEADDR``), or ``None`` when it can. Asked before the console's
    address is printed; the daemon binds it again a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            why = (exc.strerror or str(exc)).lower()
            return (
                f"cannot listen on 127.0.0.1:{port} ({why}): another program holds it "
                f"(`ss -ltnp 'sport = :{port}'` names it); give another port to --console"
            )
    return None


def _state_dir(plan: Plan, scratch: Path) -> Path:
    """Where the console's daemon keeps its journal and the run's log: beside the
    run file (the first recorder's directory), or ``scratch`` when nothing records."""
    directory = plan.recorder_directory
    return Path(directory).resolve() if directory else scratch / "state"


def _drive(
    url: str,
    token: str,
    name: str,
    run_id: str | None,
    metadata: Mapping[str, Any],
    outcome: dict[str, Any],
) -> None:
    """Load and start the run once the API answers; stop the daemon when it ends."""
    from rigd.service._client import ApiError, Client
    from rigd.service._serve import stop_self

    client = Client(url, token)
    deadline = time.monotonic() + _READY_S
    try:
        while True:
            try:
                client.status()
                break
            except ApiError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client.request("PUT", "/v1/pipeline", {"file": name})
        run = client.start(run_id=run_id, metadata=metadata)
        print(f"rigd run: run {run['run_id']} {run['state']}", file=sys.stderr)
        for event in client.events():
            ended = event.get("run", {}) if event["type"] == "run" else {}
            if ended.get("run_id") == run["run_id"] and ended["state"] in ("complete", "failed"):
                outcome["state"] = ended["state"]
                files = ", ".join(ended["files"]) or "no files"
                print(f"rigd run: run {run['run_id']} {outcome['state']}: {files}")
                break
            if event["type"] == "shutdown":
                return
    except ApiError as exc:
        print(f"rigd run: {exc}", file=sys.stderr)
        outcome["state"] = "failed"
        stop_self("the run could not start")
        return
    stop_self(f"the run ended ({outcome['state']})")
