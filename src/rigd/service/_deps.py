"""What every route depends on: the daemon it serves, and the bearer token.

``create_app`` keeps both on ``app.state``; a route takes the daemon as a
parameter typed :data:`DaemonDep`, and a router guarded by the token is made
with ``APIRouter(dependencies=GUARDED)``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rigd._exceptions import UnauthorizedError
from rigd.service._daemon import Daemon
from rigd.service._token import token_matches

__all__ = ["GUARDED", "DaemonDep", "UnauthorizedError", "authorized", "daemon_of"]

_bearer = HTTPBearer(auto_error=False, description="The token in the daemon's token file.")


# Both dependencies are ``async def``: FastAPI runs a plain ``def`` dependency
# on its thread pool, two thread hops per request that, on a loaded machine,
# each wait for the GIL behind the daemon's own threads (p99 in the hundreds
# of ms with 20 clients). They do no I/O: on the event loop they take
# microseconds.


async def daemon_of(request: Request) -> Daemon:
    """The daemon this app serves."""
    daemon: Daemon = request.app.state.daemon
    return daemon


async def authorized(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Raise :class:`UnauthorizedError` unless the request carries the daemon's token."""
    token: str = request.app.state.token
    if credentials is None or not token_matches(credentials.credentials, token):
        raise UnauthorizedError


#: A route's parameter: the daemon.
DaemonDep = Annotated[Daemon, Depends(daemon_of)]
#: A router's (or route's) dependencies: the bearer token.
GUARDED = [Depends(authorized)]
