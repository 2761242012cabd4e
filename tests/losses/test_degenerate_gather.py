"""Under ``gather="labels"`` the degenerate-batch decision is about the gathered batch.

Two gloo processes: one class on every rank warns (and gives 0) on each; one class per rank but
two classes over the group warns nothing, although each rank alone would be one class.
"""

from __future__ import annotations

import os
import tempfile
import traceback
import warnings

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from contrastkit import distributed as dist
from contrastkit.losses import DegenerateBatchWarning, reset_degenerate_warnings, sup_con

WORLD = 2
F64 = torch.float64


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


def _worker(rank: int, store: str, errors) -> None:
    torch_dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD
    )
    try:
        torch.set_num_threads(1)
        _check_on_each_rank()
    except Exception:  # reported to the parent, which fails the test with it
        errors.put(f"rank {rank}:\n{traceback.format_exc()}")
    finally:
        torch_dist.destroy_process_group()
        os._exit(0)  # as tests/distributed/_harness.py: no gloo teardown at exit


def test_gathered_labels_decide_whether_the_batch_is_degenerate():
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    store = os.path.join(tempfile.mkdtemp(prefix="ck-degenerate-"), "store")
    found = []
    try:
        mp.start_processes(_worker, args=(store, errors), nprocs=WORLD, start_method="spawn")
    except mp.ProcessExitedException as err:
        found.append(f"{err}")
    while not errors.empty():
        found.append(errors.get())
    assert not found, "\n".join(found)
