"""The REST client: ``rigd.service.Client`` for scripts, and what the CLI's
``rigd status / load / start / stop / gpus`` use against the local daemon,
found through its ``daemon.json`` (or ``--url`` and ``--token-file``). Only
the standard library: the client must work wherever rigd is installed."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

from rigd._address import search_daemon
from rigd._exceptions import ApiError
from rigd.service._pipeline_names import local_pipeline_file

__all__ = ["ApiClient", "ApiError", "Client", "format_status"]


class ApiClient:
    """Calls one daemon's REST API with its bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def find(cls, url: str | None = None, token_file: str | None = None) -> Self:
        """The client of the local daemon (or of ``url``, with the token in ``token_file``).

        Raises:
            ApiError: no daemon runs, or its token cannot be read.
        """
        if url is None or token_file is None:
            search = search_daemon()
            address = search.address
            if address is None:
                raise ApiError(
                    f"no rigd daemon is running here ({search.explain()}); "
                    "start one with `rigd serve` or `systemctl start rigd`, or pass --url "
                    "and --token-file"
                )
            url = url or address.url
            token_file = token_file or address.token_file
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise ApiError(
                f"cannot read the daemon's token file {token_file}: {exc.strerror}; run as "
                "the daemon's user, or be given the token file"
            ) from None
        return cls(url, token)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request; return the decoded JSON answer.

        Raises:
            ApiError: an error status (with the daemon's message) or no answer.
        """
        data = None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("detail", exc.reason)
            except ValueError:
                detail = exc.reason
            raise ApiError(f"{detail} (HTTP {exc.code})", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"the daemon at {self.url} did not answer: {reason}") from None


class Client(ApiClient):
    """A script's client of one daemon: ``Client(url, token)``, or ``Client.find()``
    for the local daemon. Each method is one documented REST call and returns
    its decoded JSON answer (see ``/docs``); an error status raises
    ``ApiError`` with the daemon's message and ``status`` (409: not in this
    state, 422: a wrong body or pipeline, 401: the token).

    Example::

        client = Client("http://127.0.0.1:8470", token)
        client.load("demo")
        run = client.start(run_id="m12-s3", metadata={"animal": "m12"})
        for event in client.events():
            if event["type"] == "progress":
                print(event["metrics"]["rigd_link_rate_hz"])
    """

    def status(self) -> dict[str, Any]:
        """``GET /v1/status``: state, pipeline, run, actors, links, GPUs, disk."""
        answer: dict[str, Any] = self.request("GET", "/v1/status")
        return answer

    def load(self, pipeline: str | os.PathLike[str]) -> dict[str, Any]:
        """``PUT /v1/pipeline``: a YAML file on this machine (its text is sent), or
        the name of a pipeline file the daemon knows (``"demo"``), as
        ``_pipeline_names.resolve_pipeline`` tells them apart (``rigd run`` too)."""
        path = local_pipeline_file(pipeline)
        if path is not None:
            try:
                answer: dict[str, Any] = self.request(
                    "PUT", "/v1/pipeline", path.read_text(), content_type="application/yaml"
                )
            except ApiError as exc:
                # The daemon saw only the text; its file/line/key errors name
                # "<request body>", which is this file here.
                message = str(exc).replace("<request body>", str(path))
                raise ApiError(message, exc.status) from None
        else:
            answer = self.request("PUT", "/v1/pipeline", {"file": str(pipeline)})
        return answer

    def start(
        self, run_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """``POST /v1/runs``: start a run (a retry with the same ``run_id`` returns it)."""
        body: dict[str, Any] = {"metadata": dict(metadata or {})}
        if run_id is not None:
            body["run_id"] = run_id
        answer: dict[str, Any] = self.request("POST", "/v1/runs", body)
        return answer

    def stop(self) -> dict[str, Any]:
        """``POST /v1/runs/current/stop``: stop cleanly; the finished run."""
        answer: dict[str, Any] = self.request("POST", "/v1/runs/current/stop")
        return answer

    def pause(self) -> dict[str, Any]:
        """``POST /v1/runs/current/pause``: sources hold, readers drain; the run
        (``max_pause_s``: when it resumes on its own)."""
        answer: dict[str, Any] = self.request("POST", "/v1/runs/current/pause")
        return answer

    def resume(self) -> dict[str, Any]:
        """``POST /v1/runs/current/resume``: the run (``paused_s``: how long it held)."""
        answer: dict[str, Any] = self.request("POST", "/v1/runs/current/resume")
        return answer

    def logs(
        self, run_id: str = "current", actor: str | None = None, tail: int | None = None
    ) -> dict[str, Any]:
        """``GET /v1/runs/{run_id}/logs``: the run's log lines (``lines``), of one
        actor or all, the last ``tail`` of them or all."""
        query = {k: v for k, v in (("actor", actor), ("tail", tail)) if v is not None}
        path = "/v1/runs/" + urllib.parse.quote(run_id, safe="") + "/logs"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        answer: dict[str, Any] = self.request("GET", path)
        return answer

    def trigger(self, label: str = "") -> dict[str, Any]:
        """``POST /v1/runs/current/trigger``: a soft trigger for triggered recorders."""
        answer: dict[str, Any] = self.request("POST", "/v1/runs/current/trigger", {"label": label})
        return answer

    def runs(self) -> list[dict[str, Any]]:
        """``GET /v1/runs``: every run, oldest first."""
        answer: list[dict[str, Any]] = self.request("GET", "/v1/runs")
        return answer

    def run(self, run_id: str = "current") -> dict[str, Any]:
        """``GET /v1/runs/{run_id}``: one run (``current``: the latest)."""
        answer: dict[str, Any] = self.request(
            "GET", "/v1/runs/" + urllib.parse.quote(run_id, safe="")
        )
        return answer

    def selftest(self, seconds: float = 5.0) -> dict[str, Any]:
        """``GET /v1/selftest``: the rig's checks for the loaded pipeline."""
        answer: dict[str, Any] = self.request("GET", f"/v1/selftest?seconds={seconds:g}")
        return answer

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """``GET /v1/events``: each server-sent event as a dict (``type``: status,
        state, run, progress, disk, trigger, shutdown), until the daemon ends
        the stream (``shutdown``) or the caller stops iterating. ``timeout``
        bounds the wait for each line (the daemon sends a keep-alive every
        15 s); ``None`` waits for ever.

        Raises:
            ApiError: an error status, or the daemon cannot be reached.
        """
        request = urllib.request.Request(
            self.url + "/v1/events",
            headers={"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"},
        )
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{exc.reason} (HTTP {exc.code})", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(f"the daemon at {self.url} did not answer: {exc}") from None
        with response:
            data: list[str] = []
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    event: dict[str, Any] = json.loads("\n".join(data))
                    data = []
                    yield event
                    if event.get("type") == "shutdown":
                        return


def format_status(status: dict[str, Any]) -> str:
    """The text ``rigd status`` prints."""
    lines = [f"state: {status['state']}"]
    if status.get("failure"):
        lines.append(f"failure: {status['failure']}")
    lines.append(f"pipeline: {status.get('pipeline') or '-'}")
    run = status.get("run")
    if run:
        lines.append(f"run: {run['run_id']} ({run['state']}, started {run['started_at']})")
        for path in run.get("files", []):
            lines.append(f"  file: {path}")
        for stream, frames in run.get("frames", {}).items():
            lines.append(f"  {stream}: {frames} frames, {run['dropped'].get(stream, 0)} dropped")
    for name, actor in status.get("actors", {}).items():
        lines.append(
            f"actor {name}: {actor.get('state')} (pid {actor.get('pid')}, "
            f"{actor.get('restarts', 0)} restarts)"
        )
    for link in status.get("links", []):
        dropped = sum(r["dropped"] for r in link["readers"])
        lines.append(
            f"link {link['ring']}: {link['written']} frames, {link['rate_hz']:.1f}/s, "
            f"{dropped} dropped, fill {link['fill']:.0%}"
        )
    return "\n".join(lines)
