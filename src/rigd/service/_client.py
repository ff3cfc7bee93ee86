"""The CLI's REST client: ``rigd status / load / start / stop / gpus`` against the
local daemon, found through its ``daemon.json`` (or ``--url`` and
``--token-file``). Only the standard library: the client must work wherever
rigd is installed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rigd._address import search_daemon
from rigd._exceptions import ApiError

__all__ = ["ApiClient", "ApiError", "format_status"]


class ApiClient:
    """Calls one daemon's REST API with its bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def find(cls, url: str | None = None, token_file: str | None = None) -> ApiClient:
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
