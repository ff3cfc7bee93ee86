"""What kind of Ray gRPC server answers at a port: one short call, before ``ray.init``.

Ray's two entry ports are both gRPC servers: the GCS (``ray start --head``'s
``--port``, 6379) and the Ray Client server (``ray://``, 10001). Given the
other's port, ``ray.init`` retries for 20-30 s and ends in Ray's words ("Method
not found!", "ray client connection timeout"). One unary call of the GCS's
``ray.rpc.NodeInfoGcsService/GetClusterId`` (no side effect) tells them apart
within a timeout: a GCS answers it, the Ray Client server answers
``UNIMPLEMENTED``; then Ray Client's ``ray.rpc.RayletDriver/ClusterInfo`` with
type ``PING`` (the call Ray Client itself sends first) tells a Ray Client server
from another gRPC server. A cluster with token authentication (``RAY_AUTH_MODE=
token``, Ray 2.52+) answers ``UNAUTHENTICATED`` to a call without its token, so
the call carries the token Ray would send (``authorization: Bearer <token>``,
read as Ray reads it: ``$RAY_AUTH_TOKEN``, the file ``$RAY_AUTH_TOKEN_PATH``,
then ``~/.ray/auth_token``; none with ``RAY_AUTH_MODE=disabled``).

The calls go through grpcio (which Ray installs); the messages are written by
hand (an empty ``GetClusterIdRequest``; ``ClusterInfoRequest{type: PING}`` is
field 1, varint 6), so Ray's generated protobuf modules are not needed.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

import grpc

__all__ = ["Answer", "ask", "auth_token"]

_GCS_METHOD = "/ray.rpc.NodeInfoGcsService/GetClusterId"
_CLIENT_METHOD = "/ray.rpc.RayletDriver/ClusterInfo"
_CLIENT_PING = b"\x08\x06"  # ClusterInfoRequest{type: PING (6)}


class Answer(enum.Enum):
    """What answered the calls."""

    GCS = "gcs"
    RAY_CLIENT = "ray client"
    UNAUTHENTICATED = "unauthenticated"
    OTHER_GRPC = "other grpc"
    #: No verdict (no answer within the timeout, or an error that names no kind):
    #: ``ray.init`` is left to try.
    UNKNOWN = "unknown"


def auth_token() -> tuple[str, str] | None:
    """``(token, where it was found)`` as Ray would send it, or ``None``."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return None
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token, "$RAY_AUTH_TOKEN"
    for name, path in (
        ("$RAY_AUTH_TOKEN_PATH", os.environ.get("RAY_AUTH_TOKEN_PATH")),
        ("~/.ray/auth_token", str(Path.home() / ".ray" / "auth_token")),
    ):
        if not path:
            continue
        try:
            token = Path(path).read_text().strip()
        except OSError:
            continue
        if token:
            return token, name
    return None


def ask(host: str, port: int, timeout: float) -> Answer:
    """Ask the gRPC server at ``host:port`` (tcp, no TLS) which kind it is.

    Args:
        host: name or address (IPv6 without brackets).
        port: tcp port.
        timeout: seconds for each of the (at most two) calls.
    """
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    found = auth_token()
    metadata = (("authorization", f"Bearer {found[0]}"),) if found else None
    with grpc.insecure_channel(target) as channel:
        code = _call(channel, _GCS_METHOD, b"", metadata, timeout)
        if code is grpc.StatusCode.OK:
            return Answer.GCS
        if code is grpc.StatusCode.UNAUTHENTICATED:
            return Answer.UNAUTHENTICATED
        if code is not grpc.StatusCode.UNIMPLEMENTED:
            return Answer.UNKNOWN
        code = _call(channel, _CLIENT_METHOD, _CLIENT_PING, metadata, timeout)
    if code is grpc.StatusCode.OK:
        return Answer.RAY_CLIENT
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return Answer.UNAUTHENTICATED
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return Answer.OTHER_GRPC
    return Answer.UNKNOWN


def _call(
    channel: grpc.Channel,
    method: str,
    request: bytes,
    metadata: tuple[tuple[str, str], ...] | None,
    timeout: float,
) -> grpc.StatusCode:
    call = channel.unary_unary(method)
    try:
        call(request, timeout=timeout, metadata=metadata)
    except grpc.RpcError as exc:
        code = exc.code()  # grpc's RpcError raised by a call is also a grpc.Call
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK
