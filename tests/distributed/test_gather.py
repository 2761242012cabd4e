"""One process with the whole batch == two gloo processes with half each: loss and gradients.

Each worker builds the same global data from a shared seed, keeps its rank's rows, computes the
loss with ``gather=...``, back-propagates, averages parameter gradients over ranks (as DDP
does), and compares the averaged loss and the gradients with the single-process computation
on the whole batch (``gather=None``), in float64.
"""

from __future__ import annotations

import pytest
import torch

from contrastkit import distributed as dist
from contrastkit.losses.functional import (
    debiased_info_nce,
    hard_negative_info_nce,
    info_nce,
    sup_con,
)

from ._harness import F64, WORLD, close, single, spawn


def _split(n_global: int, sizes: list[int]) -> slice:
    start = sum(sizes[: dist.rank()])
    return slice(start, start + sizes[dist.rank()])


def _compare(name, loss_of, x_global, sizes, **slices):
    """loss_of(proj, x_rows, part) with part='global' or this rank's slice of every input."""
    torch.manual_seed(0)
    proj = torch.nn.Linear(x_global.shape[1], 6, dtype=F64)
    with single():  # the one-process reference on the whole batch
        full = loss_of(proj, x_global, None)
        (g_full,) = torch.autograd.grad(full, [proj.weight])
    mine = _split(x_global.shape[0], sizes)
    local = loss_of(proj, x_global[mine], mine)
    (g_local,) = torch.autograd.grad(local, [proj.weight])
    g_avg = dist.all_reduce_sum(g_local) / WORLD
    close(dist.all_reduce_sum(local.detach()) / WORLD, full.detach(), f"{name} loss")
    close(g_avg, g_full, f"{name} gradient")


def _losses_case() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 5, generator=g, dtype=F64)
    key_x = torch.randn(8, 5, generator=g, dtype=F64)
    neg = torch.randn(6, 6, generator=g, dtype=F64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    half = [4, 4]

    # SimCLR: each rank holds 2 samples × 2 views, ids numbered from 0 on each rank
    def simclr(proj, xs, part, **kw):
        b = xs.shape[0] // 2
        ids = torch.arange(b).repeat(2) if part is not None else None
        if part is None:  # the global layout the ranks produce: rank-major blocks of views
            ids = torch.cat([torch.arange(2).repeat(2) + 2 * r for r in range(WORLD)])
        return info_nce(proj(xs), query_ids=ids, temperature=0.2, gather="instances", **kw)

    _compare("nt_xent", simclr, x, half)
    _compare(
        "nt_xent chunked",
        lambda p, xs, part: simclr(p, xs, part, chunked=True, block_rows=3),
        x,
        half,
    )

    def supcon(proj, xs, part, **kw):
        y = labels if part is None else labels[part]
        return sup_con(proj(xs), y, temperature=0.1, gather="labels", **kw)

    _compare("sup_con", supcon, x, half)
    _compare("sup_con chunked", lambda p, xs, part: supcon(p, xs, part, chunked=True), x, half)
    _compare("sup_con uneven ranks", supcon, x, [5, 3])

    def sup_sum(proj, xs, part):
        y = labels if part is None else labels[part]
        return sup_con(proj(xs), y, reduction="sum", gather="labels")

    _compare("sup_con sum", sup_sum, x, half)

    def clip(proj, xs, part, **kw):
        keys = key_x if part is None else key_x[part]
        n = xs.shape[0]
        ids = torch.arange(n)
        if part is None:
            ids = torch.cat([torch.arange(4) + 4 * r for r in range(WORLD)])
        return info_nce(
            proj(xs),
            proj(keys),
            query_ids=ids,
            key_ids=ids,
            symmetric=True,
            gather="instances",
            **kw,
        )

    _compare("clip symmetric", clip, x, half)

    def queue(proj, xs, part):
        ids = labels if part is None else labels[part]
        keys = key_x if part is None else key_x[part]
        return info_nce(
            proj(xs),
            proj(keys),
            query_ids=ids,
            key_ids=ids,
            negatives=neg,
            negative_ids=torch.tensor([0, 1, 5, 2, 7, 0]),
            gather="labels",
        )

    _compare("key + queue negatives", queue, x, half)

    for name, fn, extra in [
        ("debiased", debiased_info_nce, dict(tau_plus=0.1)),
        ("hard negative", hard_negative_info_nce, dict(tau_plus=0.1, beta=1.0)),
    ]:
        for chunked in (False, True):

            def reweighted(proj, xs, part, fn=fn, extra=extra, chunked=chunked):
                y = labels if part is None else labels[part]
                return fn(proj(xs), query_ids=y, gather="labels", chunked=chunked, **extra)

            _compare(f"{name} chunked={chunked}", reweighted, x, half)


def test_gathering_losses_match_one_process():
    spawn(_losses_case)


def test_outside_a_process_group_gather_is_the_identity():
    z = torch.randn(6, 4, dtype=F64)
    ids = torch.arange(3).repeat(2)
    assert torch.equal(dist.all_gather(z), z) and torch.equal(dist.gather_ids(ids), ids)
    assert dist.world_size() == 1 and dist.rank() == 0 and dist.local_rows(6) == slice(0, 6)
    close(info_nce(z, query_ids=ids, gather="instances"), info_nce(z, query_ids=ids), "loss")
    with pytest.raises(ValueError, match="'instances'"):
        info_nce(z, query_ids=ids, gather="rows")


class _RowEncoder(torch.nn.Module):
    """Batch-independent encoder (no BatchNorm), so 1×8 and 2×4 can agree exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8)
        )
        self.out_dim = 8

    def forward(self, x):
        return self.net(x.to(self.net[1].weight.dtype))


def _recipe(kind: str, dtype=F64):
    import kornia.augmentation as K

    from contrastkit.augment import Views
    from contrastkit.heads import ProjectionHead
    from contrastkit.recipes import SimCLR, SimCLRConfig, SupCon, SupConConfig

    torch.manual_seed(0)
    cls, cfg = (SimCLR, SimCLRConfig) if kind == "simclr" else (SupCon, SupConConfig)
    recipe = cls(_RowEncoder(), cfg(image_size=8, channels=1, flip=0.0))
    recipe.head = ProjectionHead(8, 16, 4, bn=False)
    # deterministic views: the same pixels whichever process draws them
    recipe.views = Views([torch.nn.Identity(), K.RandomHorizontalFlip(p=1.0)])
    return recipe.to(dtype)


def _digits():
    from contrastkit.data import load_digits

    return load_digits().train


def _recipe_step_case() -> None:
    d = _digits()
    images, labels = d.images[:8], torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    mine = slice(4 * dist.rank(), 4 * dist.rank() + 4)
    for kind in ("simclr", "supcon"):
        recipe = _recipe(kind)
        with single():
            full = recipe.step({"images": images, "labels": labels}).loss
            expected = torch.autograd.grad(full, list(recipe.parameters()))
        recipe.zero_grad()
        local = recipe.step({"images": images[mine], "labels": labels[mine]}).loss
        local.backward()
        dist.average_gradients(recipe)
        close(dist.all_reduce_sum(local.detach()) / WORLD, full.detach(), f"{kind} loss")
        for (name, p), g in zip(recipe.named_parameters(), expected):
            close(p.grad, g, f"{kind} {name}")


def _trainer_case() -> None:
    import tempfile

    from contrastkit.train import TrainConfig, Trainer

    train = _digits().subset(range(64))
    out = {}
    for kind in ("simclr", "supcon"):
        for world in ("one", "two"):
            recipe = _recipe(kind, torch.float32)
            cfg = TrainConfig(
                epochs=1,
                batch_size=16,
                lr=0.1,
                precision="fp32",
                channels_last=False,
                progress=False,
                monitor_every=0,
                out_dir=tempfile.mkdtemp(),
                tensorboard=False,
            )
            if world == "one":  # the one-process run, done by each process alone
                with single():
                    Trainer(recipe, train, cfg).fit()
            else:
                Trainer(recipe, train, cfg).fit()
            out[world] = {k: v.clone() for k, v in recipe.state_dict().items()}
        for k in out["one"]:
            torch.testing.assert_close(
                out["two"][k],
                out["one"][k],
                atol=1e-6,
                rtol=1e-6,
                msg=lambda m, k=k, kind=kind: f"{kind} {k}: {m}",
            )


def test_simclr_and_supcon_steps_match_one_process():
    spawn(_recipe_step_case)


def test_two_process_training_ends_with_the_weights_of_one_process():
    spawn(_trainer_case)
