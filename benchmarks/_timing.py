"""Per-call latency of a function over a list of inputs, for the search benchmarks.

Benchmark code, not library API. Run from the ``benchmarks`` folder (as the scripts are):
``from _timing import latencies``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def latencies(call: Callable[[Any], Any], inputs: Sequence[Any]) -> tuple[float, float, float]:
    """(median, p95, max) milliseconds of ``call(x)`` for each input, one at a time, after one
    warm-up call on the first input."""
    call(inputs[0])
    times = []
    for x in inputs:
        t = time.perf_counter()
        call(x)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1]
