"""Run a test function on two gloo processes (file store) and compare with one process.

``spawn(fn)`` runs the module-level function ``fn`` on every rank; an exception on any rank
fails the calling test with its traceback. ``single()`` pretends to be outside the process
group for the one-process reference computed inside a worker.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from collections.abc import Callable

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from contrastkit import distributed as dist

WORLD = 2
F64 = torch.float64


def _worker(rank: int, store: str, fn: Callable[[], None], errors) -> None:
    # a file store: no network port to pick, nothing left in TIME_WAIT between tests
    torch_dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD
    )
    try:
        torch.set_num_threads(1)
        fn()
    except Exception:  # reported to the parent, which fails the test with it
        errors.put(f"rank {rank}:\n{traceback.format_exc()}")
    finally:
        torch_dist.destroy_process_group()
        # Leave without running C++ static destructors: a gloo thread torn down at interpreter
        # exit sometimes aborts ("terminate called without an active exception") after all
        # the work is done and reported.
        os._exit(0)


def spawn(fn: Callable[[], None]) -> None:
    """Run ``fn`` (a module-level function, pickled by reference) on ``WORLD`` processes."""
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    store = os.path.join(tempfile.mkdtemp(prefix="ck-dist-"), "store")
    found = []
    try:
        mp.start_processes(_worker, args=(store, fn, errors), nprocs=WORLD, start_method="spawn")
    except mp.ProcessExitedException as err:  # a process died: report what the others saw
        found.append(f"{err}")
    while not errors.empty():
        found.append(errors.get())
    assert not found, "\n".join(found)


class single:
    """Pretend to be outside the process group (world size 1) for a reference run."""

    def __enter__(self):
        self._orig = dist.is_distributed, dist.world_size, dist.rank
        dist.is_distributed = lambda: False
        dist.world_size = lambda: 1
        dist.rank = lambda: 0

    def __exit__(self, *exc):
        dist.is_distributed, dist.world_size, dist.rank = self._orig


def close(a, b, what: str) -> None:
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0, msg=lambda m: f"{what}: {m}")


def check_step_matches_one_process(
    recipe, full_batch: dict, local_batch: dict, chunk: int, name: str
) -> None:
    """On each rank: ``recipe``'s step on its ``local_batch`` (gradient-cached in chunks of
    ``chunk`` rows, or plain with 0), gradients averaged over the ranks, equals one process's
    step on ``full_batch``: the loss (averaged over ranks) and every gradient, to 1e-10."""
    from contrastkit.train import grad_cache_step

    with single():
        full = recipe.step(full_batch).loss
        params = [p for p in recipe.parameters() if p.requires_grad]
        expected = torch.autograd.grad(full, params)
    recipe.zero_grad()
    if chunk:
        local = grad_cache_step(recipe, local_batch, chunk).loss
    else:
        local = recipe.step(local_batch).loss
        local.backward()
    dist.average_gradients(recipe)
    close(dist.all_reduce_sum(local.detach()) / WORLD, full.detach(), f"{name} loss")
    for p, g in zip(params, expected):
        close(p.grad, g, f"{name} gradient (chunk {chunk})")
