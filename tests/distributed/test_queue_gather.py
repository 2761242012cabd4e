"""MoCo under torch.distributed: one process with 8 images == two gloo processes with 4 each.

Two training steps (the second sees a queue holding the first step's keys, some of them copies
of its own images): the averaged loss and gradients equal the one-process ones, and every
process ends with the one-process queue (all ranks' keys, rank order, data-set indices as ids).
"""

from __future__ import annotations

import torch

from contrastkit import distributed as dist

from ._harness import F64, WORLD, close, single, spawn


def _moco():
    import kornia.augmentation as K

    from contrastkit.augment import Views
    from contrastkit.recipes import MoCo, MoCoConfig

    class RowEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8)
            )
            self.out_dim = 8

        def forward(self, x):
            return self.net(x.to(self.net[1].weight.dtype))

    torch.manual_seed(0)
    # no BN anywhere (encoder and head), so each row's embedding is independent of its batch
    cfg = MoCoConfig(
        image_size=8, channels=1, flip=0.0, proj_hidden=16, proj_dim=4, queue_size=32, proj_bn=False
    )
    recipe = MoCo(RowEncoder(), cfg)
    recipe.views = Views([torch.nn.Identity(), K.RandomHorizontalFlip(p=1.0)])  # deterministic
    return recipe.to(F64)


def _moco_case() -> None:
    from contrastkit.data import load_digits

    images = load_digits().train.images[:16]
    steps = [
        torch.arange(8),
        torch.tensor([3, 9, 5, 10, 0, 11, 12, 6]),
    ]  # step 2 repeats 3, 5, 0, 6
    reference, recipe = _moco(), _moco()
    for step, idx in enumerate(steps):
        batch = {"images": images[idx], "indices": idx}
        with single():
            full = reference.step(batch).loss
            params = [p for p in reference.parameters() if p.requires_grad]
            expected = torch.autograd.grad(full, params)
        mine = slice(4 * dist.rank(), 4 * dist.rank() + 4)
        recipe.zero_grad()
        local = recipe.step({k: v[mine] for k, v in batch.items()}).loss
        local.backward()
        dist.average_gradients(recipe)
        close(dist.all_reduce_sum(local.detach()) / WORLD, full.detach(), f"step {step} loss")
        trained = [(n, p) for n, p in recipe.named_parameters() if p.requires_grad]
        for (name, p), g in zip(trained, expected):
            close(p.grad, g, f"step {step} {name}")
        close(recipe.queue.features, reference.queue.features, f"step {step} queue")
        assert torch.equal(recipe.queue.ids, reference.queue.ids)
        assert len(recipe.queue) == 8 * (step + 1)


def test_moco_queue_and_loss_match_one_process():
    spawn(_moco_case)
