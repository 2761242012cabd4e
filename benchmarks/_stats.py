"""Mean ± standard deviation over seeds, for the benchmarks that repeat a run per seed."""

from __future__ import annotations

import statistics


def mean_std(runs: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """``{name: [figure per seed]}`` → ``{name: (mean, population std)}`` (std 0 for one seed).

    Example:
        >>> mean_std({"a": [1.0, 3.0], "b": [2.0]})
        {'a': (2.0, 1.0), 'b': (2.0, 0.0)}
    """
    return {
        k: (statistics.mean(v), statistics.pstdev(v) if len(v) > 1 else 0.0)
        for k, v in runs.items()
    }
