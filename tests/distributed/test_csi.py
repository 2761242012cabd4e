"""CSI under the generic machinery: gradient caching equals the plain step (float64, 1e-8), and
two gloo processes with 4 images each equal one process with 8 (loss and gradients, 1e-10),
with and without gradient caching: the (image, rotation) instance ids stay distinct across
ranks and the shift cross-entropy is the global batch's mean.

Views are deterministic (the image and its mirror image) and BatchNorm is in eval mode, so
every row is embedded the same way whichever process or chunk holds it.
"""

from __future__ import annotations

import copy

import kornia.augmentation as K
import pytest
import torch
from torch import Tensor, nn

from contrastkit import distributed as dist
from contrastkit.augment import Views
from contrastkit.encoders import SmallCNN
from contrastkit.recipes.csi import CSI, CSIConfig
from contrastkit.train import grad_cache_step

from ._harness import WORLD, check_step_matches_one_process, spawn

F64 = torch.float64


class _Cast(nn.Module):
    """A small SmallCNN fed views of any float dtype (float32 views into a float64 net)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = SmallCNN(1, width=4, stages=2)
        self.out_dim = self.net.out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.to(next(self.net.parameters()).dtype))


def _recipe(shifts: int = 4) -> CSI:
    torch.manual_seed(0)
    cfg = CSIConfig(
        image_size=16, channels=1, proj_hidden=16, proj_dim=8, shifts=shifts, shift_weight=0.7
    )
    recipe = CSI(_Cast(), cfg)
    recipe.views = Views([nn.Identity(), K.RandomHorizontalFlip(p=1.0)])
    recipe = recipe.to(F64)
    for m in recipe.modules():  # rows independent of their batch
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    # trained BatchNorm statistics, so that eval mode is not the identity map
    with torch.no_grad():
        for m in recipe.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return recipe


def _images(n: int = 8, seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 16, 16), generator=g, dtype=torch.uint8)


def _grads(recipe: nn.Module) -> dict[str, Tensor]:
    return {k: p.grad.clone() for k, p in recipe.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_grad_cache_equals_the_plain_step(chunk):
    recipe = _recipe()
    twin = copy.deepcopy(recipe)
    batch = {"images": _images(4)}
    plain = recipe.step(batch)
    plain.loss.backward()
    cached = grad_cache_step(twin, batch, chunk)
    torch.testing.assert_close(cached.loss, plain.loss.detach(), atol=1e-8, rtol=0)
    expected, actual = _grads(recipe), _grads(twin)
    assert set(actual) == set(expected)
    assert any(k.startswith("shift_head") for k in expected)
    assert any(k.startswith("head") for k in expected)
    assert any(k.startswith("encoder") for k in expected)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-8, rtol=0, msg=key)
    for name in ("con_si", "shift_ce", "shift_accuracy"):
        assert abs(cached.metrics[name] - plain.metrics[name]) < 1e-8


def _two_process_case() -> None:
    images = _images(8)
    n = 8 // WORLD
    mine = slice(n * dist.rank(), n * dist.rank() + n)
    for shifts in (4, 2):
        for chunk in (0, 3):
            check_step_matches_one_process(
                _recipe(shifts),
                {"images": images},
                {"images": images[mine]},
                chunk,
                f"csi shifts={shifts}",
            )


def test_two_processes_equal_one():
    spawn(_two_process_case)
