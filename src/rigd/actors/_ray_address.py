"""Whether a Ray address answers, asked before ``ray.init`` waits on it.

``ray.init(address="HOST:PORT")`` retries a GCS that is not there for
minutes (it was killed after 164 s here, ``127.0.0.1:1``), and Ray Client
(``ray://HOST:PORT``) for about 30 s, and a port that answers but is no Ray
server (the dashboard's 8265) keeps either waiting. ``check_answers`` asks
first, within a few seconds: a tcp connection, then the start of an HTTP/2
exchange (RFC 9113 3.4: the server's first frame is a SETTINGS frame), which
the GCS and the Ray Client server, both gRPC servers, send at once. Then one
short gRPC call tells the two apart (``_ray_grpc``): a GCS answers
``NodeInfoGcsService/GetClusterId``, the Ray Client server has no such method
(``UNIMPLEMENTED``, Ray's "Method not found!") but answers Ray Client's ``PING``.
Ray itself, given the other kind's port, retries for 20-30 s; a cluster with
token authentication answers ``UNAUTHENTICATED`` to a call without its token,
which Ray retries as long. With ``RAY_USE_TLS`` set, only the connection is
checked (the server then speaks TLS first).
"""

from __future__ import annotations

import os
import socket

from rigd.actors._ray_grpc import Answer, ask, auth_token

__all__ = ["check_answers", "host_and_port"]

#: Ray Client's port when ``ray://HOST`` names none (Ray's default).
RAY_CLIENT_PORT = 10001
#: The client connection preface, then an empty SETTINGS frame (RFC 9113 3.4, 6.5).
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 4
_FIX = (
    "give the head node's address: ray:HOST:6379 (its GCS port, as `ray start --head` "
    "prints it) or ray://HOST:10001 (Ray Client), or start a cluster there (`ray start --head`)"
)


def host_and_port(target: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``"HOST:PORT"`` or ``"ray://HOST[:PORT]"`` (``[v6]:PORT`` too);
    ``None`` for what is no such address (``"auto"``: Ray finds it itself)."""
    client = target.startswith("ray://")
    rest = target.removeprefix("ray://").split("/", 1)[0]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail.removeprefix(":")
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:
        host, port_text = rest, ""
    if not host:
        return None
    if not port_text:
        return (host, RAY_CLIENT_PORT) if client else None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def check_answers(address: str, target: str, timeout: float = 5.0) -> None:
    """Return if a Ray server may answer at ``target`` (``ray.init``'s address).

    Args:
        address: the address as given (``ray:HOST:PORT``), for the message.
        target: what ``ray.init`` is given (``HOST:PORT`` or ``ray://HOST:PORT``).
        timeout: seconds for the connection, and again for the first frame.

    Raises:
        ConnectionError: nothing listens there (refused, unreachable, no such
            host, no answer within ``timeout``), or what answers is no gRPC
            server; the message names the address and what to give instead.
    """
    where = host_and_port(target)
    if where is None:
        return
    host, port = where
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise ConnectionError(
            f"no Ray cluster at {address}: no host {host!r} ({exc}); {_FIX}"
        ) from None
    except TimeoutError:
        why = f"no answer within {timeout:g} s: a host that is down, or a firewall"
        raise ConnectionError(
            f"no Ray cluster at {address} ({host}:{port}: {why}); {_FIX}"
        ) from None
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise ConnectionError(
            f"no Ray cluster at {address} ({host}:{port}: {why}); {_FIX}"
        ) from None
    with conn:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        try:
            conn.sendall(_PREFACE)
            head = _read(conn, 9)
        except OSError:
            head = b""
    if len(head) < 9 or head[3] != _SETTINGS:
        raise ConnectionError(
            f"no Ray cluster at {address} ({host}:{port} answers, but not as Ray's GCS or Ray "
            f"Client server: another port, such as the dashboard's 8265?); {_FIX}"
        )
    _check_kind(address, host, port, client=target.startswith("ray://"), timeout=timeout)


def _check_kind(address: str, host: str, port: int, *, client: bool, timeout: float) -> None:
    """Raise ConnectionError if the gRPC server at ``host:port`` is not the kind
    ``address`` names, or refuses the call for want of a token."""
    answer = ask(host, port, timeout)
    if answer is Answer.UNAUTHENTICATED:
        raise ConnectionError(_auth_message(address))
    if answer is Answer.GCS and client:
        raise ConnectionError(
            f"{address} is the port of a Ray cluster's GCS, not of its Ray Client server: "
            f"give ray:{_joined(host, port)} (rigd then joins the cluster as a driver), or "
            f"ray://{_joined(host, RAY_CLIENT_PORT)} (Ray Client's port, as `ray start --head "
            "--ray-client-server-port` sets it)"
        )
    if answer is Answer.RAY_CLIENT and not client:
        raise ConnectionError(
            f"{address} is the port of a Ray Client server, not of a Ray cluster's GCS: give "
            f"ray://{_joined(host, port)} (Ray Client), or ray:HOST:6379 (the GCS port, as "
            "`ray start --head` prints it)"
        )
    if answer is Answer.OTHER_GRPC:
        raise ConnectionError(
            f"no Ray cluster at {address} ({host}:{port} answers gRPC, but neither as Ray's GCS "
            f"nor as a Ray Client server); {_FIX}"
        )


def _auth_message(address: str) -> str:
    found = auth_token()
    where = f"refuses the token from {found[1]}" if found else "this process has no token"
    return (
        f"the Ray cluster at {address} uses token authentication and {where} (Ray's "
        "InvalidAuthToken); give this process the cluster's token: RAY_AUTH_MODE=token and "
        "RAY_AUTH_TOKEN=<token> (or RAY_AUTH_TOKEN_PATH=<file>, or ~/.ray/auth_token), the token "
        "`ray get-auth-token` prints on the head node"
    )


def _joined(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _read(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data
