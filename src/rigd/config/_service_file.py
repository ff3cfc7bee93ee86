"""The daemon's service config (YAML, validated), as ``rigd serve --config`` reads it.

A service config::

    bind: 127.0.0.1             # the REST API's address (loopback by default)
    port: 8470
    token_file: /var/lib/rigd/token
    data_dir: /var/lib/rigd/data
    pipeline_dirs: [/etc/rigd/pipelines]
    bundled_pipelines: true     # the bundled ones (demo) may be loaded by name too
    allowed_modules: [rigd, mylab.actors]
    max_body_bytes: 1048576
    watchdog_stall_s: 5

Relative paths are relative to the config file. Every key has a default, so
no file at all is a valid config: loopback, port 8470, files under
``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``) or ``~/.local/state/rigd``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rigd._exceptions import ServiceConfigError
from rigd.config._yaml import validate_yaml

__all__ = ["ServiceConfig", "ServiceConfigError", "load_service_config"]

DEFAULT_PORT = 8470


def default_state_dir() -> Path:
    """Where the daemon keeps its token and run files unless told otherwise."""
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "rigd"


class ServiceConfig(BaseModel):
    """What ``rigd serve`` needs; every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bind: str = "127.0.0.1"
    #: 0 picks a free port (written to daemon.json; tests use it).
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    token_file: Path | None = None
    data_dir: Path | None = None
    #: Where the daemon keeps its journal (``runs.jsonl``) and each run's log
    #: file (default: ``data_dir``).
    state_dir: Path | None = None
    #: Directories ``PUT /v1/pipeline`` may load files from by name.
    pipeline_dirs: list[Path] = Field(default_factory=list)
    #: Whether rigd's bundled pipelines (``demo``) may be loaded by name too.
    bundled_pipelines: bool = True
    #: Module prefixes pipeline classes may come from: loading a pipeline
    #: must not be a way to run arbitrary code.
    allowed_modules: list[str] = Field(default_factory=lambda: ["rigd"])
    #: Where daemon.json goes (default: systemd's RuntimeDirectory, or
    #: $XDG_RUNTIME_DIR/rigd, or /tmp/rigd-<uid>).
    runtime_dir: Path | None = None
    #: Non-loopback hosts a pipeline's ZMQ publisher may bind (e.g. 0.0.0.0): frames
    #: published there reach the network without authentication. Empty: loopback only.
    publish_hosts: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    #: A running pipeline that moves no frame for this long is unhealthy
    #: (systemd's watchdog is then not fed).
    watchdog_stall_s: float = Field(default=5.0, gt=0)
    #: After SIGTERM the daemon is gone within this many seconds whatever it was
    #: doing (a run not sealed by then is repaired at the next start). Keep it
    #: below systemd's TimeoutStopSec.
    stop_timeout_s: float = Field(default=80.0, gt=0)
    #: Warn (an event, a metric, /v1/health unhealthy) when the running run's data
    #: rate fills the data directory's disk in less than this many minutes.
    disk_warn_minutes: float = Field(default=10.0, ge=0)
    num_cpus: float | None = Field(default=None, ge=0)
    num_gpus: float | None = Field(default=None, ge=0)

    @field_validator("allowed_modules")
    @classmethod
    def _module_names(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix or not all(part.isidentifier() for part in prefix.split(".")):
                raise ValueError(
                    f"allowed_modules takes module names like 'mylab.actors', got {prefix!r}"
                )
        return value

    def resolved(self, base: Path) -> ServiceConfig:
        """This config with relative paths made absolute against ``base`` and defaults filled."""
        state = default_state_dir()

        def absolute(path: Path | None, default: Path) -> Path:
            chosen = default if path is None else path.expanduser()
            return chosen if chosen.is_absolute() else (base / chosen).resolve()

        data_dir = absolute(self.data_dir, state / "data")
        return self.model_copy(
            update={
                "token_file": absolute(self.token_file, state / "token"),
                "data_dir": data_dir,
                "state_dir": absolute(self.state_dir, data_dir),
                "pipeline_dirs": [absolute(p, p) for p in self.pipeline_dirs],
                "runtime_dir": None
                if self.runtime_dir is None
                else absolute(self.runtime_dir, self.runtime_dir),
            }
        )


def load_service_config(path: str | Path | None) -> ServiceConfig:
    """Read a service config (defaults for ``None``), paths resolved.

    Raises:
        FileNotFoundError: no such file.
        ServiceConfigError: the YAML or its keys are wrong.
    """
    if path is None:
        return ServiceConfig().resolved(Path.cwd())
    text = Path(path).read_text()
    config, _ = validate_yaml(
        ServiceConfig, str(path), text, ServiceConfigError, "a service config is a mapping of keys"
    )
    return config.resolved(Path(path).resolve().parent)
