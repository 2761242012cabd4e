"""Each test starts with the degenerate-batch warnings re-armed (they warn once per process), so
that a test which expects one (or none) does not depend on which tests ran before it."""

from __future__ import annotations

import pytest

from contrastkit._checks import reset_degenerate_warnings


@pytest.fixture(autouse=True)
def _rearm_degenerate_warnings():
    reset_degenerate_warnings()
    yield
    reset_degenerate_warnings()
