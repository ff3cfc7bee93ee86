"""A pytest plugin for bench/ray_compat.py: one outcome and reason per test."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

_results: dict[str, dict[str, str]] = {}


def _out_of_scope_reason(text: str) -> str | None:
    marker = "OutOfScope: "
    at = text.find(marker)
    if at < 0:
        return None
    return text[at + len(marker) :].splitlines()[0]  # "class: what the test used"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    entry = _results.setdefault(item.nodeid, {"outcome": "passed", "reason": ""})
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else "skipped"
        reason = reason.removeprefix("Skipped: ")
        entry.update(outcome="out of scope", reason=reason.removeprefix("out of scope: "))
        if not reason.startswith("out of scope"):
            entry["reason"] = f"skipped by Ray's own file: {reason}"
    elif report.failed and entry["outcome"] != "out of scope":
        text = str(report.longrepr)
        oos = _out_of_scope_reason(text)
        if oos is not None:
            entry.update(outcome="out of scope", reason=oos)
        else:
            last = [line for line in text.splitlines() if line.startswith("E ")][:1]
            entry.update(outcome="fail", reason=last[0][1:].strip() if last else report.when)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("RAY_COMPAT_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(_results, f)
