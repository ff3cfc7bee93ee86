"""``rigd serve``: the daemon. One process: the actor runtime's head, the
supervisor and the REST API on one uvicorn event loop.

Start: read the service config, make the token if there is none, repair
what a crashed daemon left (unsealed run files in the data directory, its
shared-memory segments and socket directories), start the runtime, bind the
API, write ``daemon.json`` (for ``rigd.init(address="auto")`` and the CLI),
then tell systemd ``READY=1``.

Stop (SIGTERM, or Ctrl-C): refuse new runs, end event streams, stop the
HTTP server, stop a running run cleanly (sources first, readers drain,
files sealed), shut the runtime down, remove ``daemon.json``, exit 0. A
second signal exits at once (the run files are then repaired at the next
start).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from rigd import actors
from rigd._address import DAEMON_FILE, DaemonAddress, default_runtime_dir, prepare_runtime_dir
from rigd._version import __version__
from rigd.config import ServiceConfig, ServiceConfigError, load_service_config
from rigd.service import _systemd
from rigd.service._api import create_app
from rigd.service._daemon import Daemon
from rigd.service._status_path import StatusPath
from rigd.service._stop_signals import STOP_SIGNALS
from rigd.service._token import ensure_token
from rigd.storage import recover_run, remove_stale_rings, remove_stale_stores, writer_alive

__all__ = ["recover_data_dir", "serve"]

log = logging.getLogger(__name__)

_STATUS_EVERY_S = 2.0
_GRACEFUL_HTTP_S = 3


def recover_data_dir(data_dir: Path) -> list[str]:
    """Repair every run file under ``data_dir`` a crash left unsealed; return their paths.

    A file a live writer holds (a ``rigd run`` recording into the same
    directory: ``rigd.storage.writer_alive``) is skipped, said at INFO.
    """
    repaired = []
    for path in sorted(data_dir.rglob("*.h5")):
        try:
            if writer_alive(path):
                log.info("left %s alone: a live run is writing it", path)
                continue
            report = recover_run(path)
        except (OSError, ValueError) as exc:
            log.warning("could not check %s: %s", path, exc)
            continue
        if report.repaired:
            log.warning("repaired %s, left unsealed by a crash (%s)", path, dict(report.frames))
            repaired.append(str(path))
    return repaired


class _Server(uvicorn.Server):
    """uvicorn, with rigd's signal handling: the first SIGTERM, SIGHUP (the
    terminal of a daemon started in one closed) or SIGINT begins a clean stop,
    a Ctrl-C (SIGINT) after it forces, a SIGTERM or SIGHUP never does (the
    same request again); the signal is not raised again afterwards, so a
    clean stop exits 0. Python's default for SIGHUP would end the process at
    once, its run files left to repair."""

    def __init__(self, config: uvicorn.Config, daemon: Daemon) -> None:
        super().__init__(config)
        self.daemon = daemon
        self.stop_asked = False  # set by the first SIGTERM or SIGINT, as it begins
        self.previous_handlers: dict[int, Any] = {}

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Kept past uvicorn's serve: the run is sealed after it (``serve``'s
        # ``daemon.close``), and a second SIGTERM then must not kill the process.
        if not self.previous_handlers:
            self.previous_handlers = {
                sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS
            }
        yield

    def restore_signals(self) -> None:
        """Put back the handlers ``capture_signals`` replaced (once the daemon is closed)."""
        for sig, handler in self.previous_handlers.items():
            signal.signal(sig, handler)
        self.previous_handlers = {}

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        asked, self.stop_asked = self.stop_asked or self.should_exit, True  # before any call
        if asked and sig != signal.SIGINT:
            # The same request: `timeout` sends two at once (to this process,
            # then to its group); stop_timeout_s bounds the stop whatever.
            log.info("%s: already stopping cleanly (a Ctrl-C forces)", signal.Signals(sig).name)
            return
        if asked:
            log.warning("second %s: exiting at once", signal.Signals(sig).name)
            self.force_exit = True
            os._exit(1)
        why = _stop_reasons.pop() if _stop_reasons and sig == signal.SIGINT else None
        log.info("%s: stopping cleanly", why or signal.Signals(sig).name)
        _systemd.notify("STOPPING=1", "STATUS=stopping: sealing the run files")
        # Whatever a request is doing, the daemon is gone within stop_timeout_s
        # (keep it below systemd's TimeoutStopSec); the next start repairs.
        timer = threading.Timer(self.daemon.config.stop_timeout_s, _force_exit)
        timer.daemon = True
        timer.start()
        self.daemon.begin_shutdown()
        self.should_exit = True


#: Why this process stops itself (``stop_self``), logged instead of the signal's name.
_stop_reasons: list[str] = []


def stop_self(reason: str) -> None:
    """Stop this process's daemon cleanly, as Ctrl-C does (a SIGINT to itself), logging
    ``reason`` (``"the run ended"``) instead of ``SIGINT`` (``rigd run --console``)."""
    _stop_reasons.append(reason)
    os.kill(os.getpid(), signal.SIGINT)


def _force_exit() -> None:
    log.error("the clean stop did not finish in stop_timeout_s; exiting at once")
    logging.shutdown()
    os._exit(1)


async def _report_health(server: _Server, daemon: Daemon) -> None:
    """READY=1 once serving; then STATUS= and WATCHDOG=1 while the daemon works:
    healthy, or failed for a cause that needs a person (``Daemon.feeds_watchdog``)."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.02)
    line = _one_line(daemon.health()[1])
    _systemd.notify("READY=1", f"STATUS={line}")
    log.info("rigd %s serving (%s)", __version__, line)
    interval = _systemd.watchdog_interval()
    every = min(_STATUS_EVERY_S, interval) if interval else _STATUS_EVERY_S
    last_line = ""
    while not server.should_exit:
        healthy, detail = daemon.health()
        line = _one_line(detail)
        fields = [f"STATUS={line}"] if line != last_line else []
        # A failure that needs a person is unhealthy but still fed: restarting
        # the daemon fixes no camera and no disk (Daemon.feeds_watchdog).
        if interval and (healthy or daemon.feeds_watchdog()):
            fields.append("WATCHDOG=1")
        elif interval:
            log.error("unhealthy, not feeding the watchdog: %s", line)
        if fields:
            _systemd.notify(*fields)
        last_line = line
        await asyncio.sleep(every)


def _one_line(text: str) -> str:
    """``text`` on one line: a newline would end sd_notify's STATUS= field (and what
    follows would be read as fields of its own)."""
    return " ".join(text.split())


_LOCK_FILE = ".rigd-serve.lock"


def _hold(directory: Path, what: str) -> int:
    """Lock ``directory`` for this daemon's lifetime (the descriptor stays open).

    Raises:
        OSError: another daemon holds it; the message names its pid and the fix.
    """
    path = directory / _LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise OSError(
            f"another rigd daemon (pid {holder}) serves the {what} {directory}; stop it "
            f"(rigd status shows it), or give this one its own data_dir and runtime_dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _bind(config: ServiceConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by every accepted connection: a keep-alive client's request is not held
    # back by Nagle's algorithm waiting for its delayed ACK (40 ms a request).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((config.bind, config.port))
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno,
            f"cannot listen on {config.bind}:{config.port}: {exc.strerror}; is another "
            "rigd running? Choose another port in the service config",
        ) from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def serve(config_path: str | None = None, *, recover: bool = True) -> int:
    """Run the daemon until SIGTERM or Ctrl-C; the exit status. ``recover=False``
    leaves the data directory's files alone at start (``rigd run --console``,
    whose data directory is the user's current one)."""
    try:
        config = load_service_config(config_path)
    except (ServiceConfigError, FileNotFoundError) as exc:
        print(f"rigd serve: {exc}", file=sys.stderr)
        return 2
    assert config.token_file is not None
    assert config.data_dir is not None
    locks: list[int] = []
    runtime_home = config.runtime_dir or default_runtime_dir()
    try:
        token = ensure_token(config.token_file)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if config.state_dir is not None:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        # One daemon per data directory and per runtime directory: a second
        # one would repair the first one's live files and take its daemon.json.
        # A runtime directory clients would not trust is refused before anything
        # is locked or started (it is where daemon.json goes).
        prepare_runtime_dir(runtime_home)
        locks.append(_hold(config.data_dir, "data directory"))
        locks.append(_hold(runtime_home, "runtime directory"))
        sock = _bind(config)
    except (OSError, ValueError) as exc:
        for fd, directory in zip(locks, (config.data_dir, runtime_home), strict=False):
            with contextlib.suppress(FileNotFoundError):
                (directory / _LOCK_FILE).unlink()
            os.close(fd)
        print(f"rigd serve: {exc}", file=sys.stderr)
        return 2

    started = time.monotonic()
    for path in remove_stale_stores():
        log.warning("removed store %s left by a process that died", path)
    for segment in remove_stale_rings():
        log.warning("removed ring %s left by a crashed process", segment)
    if recover:
        recover_data_dir(config.data_dir)
    facts = actors.init(num_cpus=config.num_cpus, num_gpus=config.num_gpus, namespace="rigd")
    daemon = Daemon(config)
    runtime_dir = config.runtime_dir or default_runtime_dir()
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        url_host = "127.0.0.1"
    runtime = actors.get_runtime()
    address = DaemonAddress(
        pid=os.getpid(),
        session_dir=facts["session_dir"],
        shm_prefix=runtime.shm_prefix,
        url=f"http://{url_host}:{port}",
        token_file=str(config.token_file),
        num_cpus=float(facts["num_cpus"] or 0),
        num_gpus=float(facts["num_gpus"] or 0),
        version=__version__,
    )
    server = _Server(
        uvicorn.Config(
            StatusPath(create_app(daemon, token), daemon.status, token),
            log_level="warning",
            access_log=False,
            lifespan="off",
            # httptools (llhttp, in C): h11's pure-Python parsing was a third
            # of a request's time on the event loop (bench/service.py).
            http="httptools",
            ws="wsproto",  # the console's live view (WS /v1/preview)
            timeout_graceful_shutdown=_GRACEFUL_HTTP_S,
        ),
        daemon,
    )

    async def main() -> None:
        health = asyncio.create_task(_report_health(server, daemon))
        try:
            await server.serve(sockets=[sock])
        finally:
            health.cancel()

    # What the start made (modules, the app, the runtime: ~50,000 objects) is never
    # garbage, yet each full collection walked it all: 40-60 ms with the loop stopped,
    # every request in flight waiting (bench/service.py). Frozen, a collection walks
    # only what the daemon made since (CPython's gc.freeze, for long-lived servers).
    gc.freeze()
    daemon_file = address.write(runtime_dir)
    log.info(
        "rigd %s: API on %s, data in %s, started in %.2f s",
        __version__,
        address.url,
        config.data_dir,
        time.monotonic() - started,
    )
    try:
        asyncio.run(main())
    finally:
        # A daemon stopping by any path seals the run under way first.
        record = daemon.close()
        if record is not None:
            log.info("run %s %s: %s", record.run_id, record.state, ", ".join(record.files))
        with contextlib.suppress(FileNotFoundError):
            if DaemonAddress.read(daemon_file).pid == os.getpid():
                (runtime_dir / DAEMON_FILE).unlink()
        sock.close()
        actors.shutdown()
        for directory in (config.data_dir, runtime_home):
            with contextlib.suppress(FileNotFoundError):
                (directory / _LOCK_FILE).unlink()
        for fd in locks:
            os.close(fd)
        server.restore_signals()
    return 0
