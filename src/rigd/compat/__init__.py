"""Compatibility layers for code written for other frameworks.

``rigd.compat.improv``: improv's ``Actor`` (``setup``/``runStep``/``stop``,
``q_in``/``q_out``, ``self.client``), so improv actors run on rigd with
only their import lines changed.
"""

__all__: list[str] = []
