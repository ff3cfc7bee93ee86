#!/usr/bin/env python3
"""The cost of task events: sync call latency with events on and off.

Alternates the two actors in rounds (the machine is noisy) and prints each
round and the median ratio; the target is on/off within 1.10.

    .venv/bin/python bench/task_events.py
"""

from __future__ import annotations

import statistics
import time

import rigd

ROUNDS = 7
CALLS = 3000


class Pinger:
    def ping(self) -> None:
        return None


def p50_us(actor: rigd.actor.ActorHandle[Pinger]) -> float:
    lat = []
    for _ in range(CALLS):
        t = time.perf_counter_ns()
        rigd.get(actor.ping.remote())
        lat.append(time.perf_counter_ns() - t)
    return statistics.median(lat) / 1e3


def main() -> None:
    rigd.init()
    on = rigd.remote(Pinger).remote()
    off = rigd.remote(enable_task_events=False)(Pinger).remote()
    rigd.get([on.ping.remote(), off.ping.remote()])
    ratios = []
    for i in range(ROUNDS):
        a, b = p50_us(on), p50_us(off)
        ratios.append(a / b)
        print(f"round {i + 1}: events on {a:.1f} us, off {b:.1f} us, on/off {a / b:.3f}")
    print(f"median on/off: {statistics.median(ratios):.3f} (target <= 1.10)")
    rigd.shutdown()


if __name__ == "__main__":
    main()
