"""Under ``gather="labels"`` the degenerate-batch decision is about the gathered batch.

Two gloo processes: one class on every rank warns (and gives 0) on each; one class per rank but
two classes over the group warns nothing, although each rank alone would be one class.
"""

from __future__ import annotations

import warnings

import torch

from contrastkit import distributed as dist
from contrastkit.losses import DegenerateBatchWarning, reset_degenerate_warnings, sup_con

from ._harness import F64, spawn


def _degenerate_messages(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, DegenerateBatchWarning)]


def _check_on_each_rank() -> None:
    rank = dist.rank()
    g = torch.Generator().manual_seed(rank)
    z = torch.randn(4, 5, generator=g, dtype=F64).requires_grad_(True)
    reset_degenerate_warnings()
    # every rank one and the same class: the gathered batch has no negative
    same = torch.zeros(4, dtype=torch.long)
    loss, found = _degenerate_messages(lambda: sup_con(z, same, gather="labels"))
    assert len(found) == 1 and found[0].startswith("sup_con: every row"), found
    (grad,) = torch.autograd.grad(loss, z)
    assert float(loss.detach()) == 0.0 and torch.equal(grad, torch.zeros_like(z))
    # one class per rank (its rank), two over the group: gathered negatives exist
    reset_degenerate_warnings()
    own = torch.full((4,), rank, dtype=torch.long)
    loss, found = _degenerate_messages(lambda: sup_con(z, own, gather="labels"))
    assert found == [] and float(loss.detach()) > 0, found


def test_gathered_labels_decide_whether_the_batch_is_degenerate():
    spawn(_check_on_each_rank)
