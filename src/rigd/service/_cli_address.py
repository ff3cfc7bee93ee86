"""The CLI's ``--address`` (``rigd run``, ``rigd reprocess``): a Ray cluster's.

``rigd.init(address=...)`` takes more (None, ``auto``: the local daemon, or
another driver's session), and its error lists those; on the command line
``--address`` runs across a Ray cluster only, so a value that is none of
Ray's forms is refused here, naming the forms a user gives (the README's
"rigd's actor API on a Ray cluster" table). Whether a cluster answers there
is ``rigd.init``'s check (``actors._ray_backend``).
"""

from __future__ import annotations

__all__ = ["not_a_cluster_address"]

#: The forms ``--address`` takes, as the README's table gives them.
FORMS = (
    "ray://HOST:10001 (Ray Client to a remote cluster), ray:HOST:6379 (a cluster's GCS "
    "address), ray:auto or ray (the Ray cluster this machine is in)"
)


def not_a_cluster_address(address: str) -> str | None:
    """Why ``address`` (``--address``'s value) is not a Ray cluster's, or None.

    ``ray``, and anything starting ``ray:`` (``ray://HOST:PORT``,
    ``ray:HOST:PORT``, ``ray:auto``), is one (as ``rigd.init`` tells them).
    """
    if address == "ray" or address.startswith("ray:"):
        return None
    return (
        f"--address {address!r} is not a Ray cluster's address; give {FORMS} "
        "(see Clusters in the README)"
    )
