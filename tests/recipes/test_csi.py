"""The CSI recipe: its loss equals an explicit loop (con-SI + λ·cls-SI), it is SimCLR with one
shift and no shift loss, the prepared rows are the rotated images' views in the documented
order, training runs, and bad input is refused with the fix.

Gradient caching and two gloo processes: tests/distributed/test_csi.py.
"""

from __future__ import annotations

import copy
import math

import kornia.augmentation as K
import pytest
import torch
from torch import nn

from contrastkit.augment import Views
from contrastkit.data.datasets import ImageSet
from contrastkit.encoders import SmallCNN
from contrastkit.recipes.csi import CSI, CSIConfig, rotate
from contrastkit.recipes.simclr import SimCLR, SimCLRConfig
from contrastkit.train import TrainConfig, Trainer

F64 = torch.float64
SMALL = dict(image_size=16, channels=1, proj_hidden=16, proj_dim=8, flip=0.0, crop_scale=(0.2, 1))


class Cast(nn.Module):
    """A SmallCNN that takes views of any float dtype (float32 views into a float64 net)."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.net = SmallCNN(channels, width=4, stages=2)
        self.out_dim = self.net.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(next(self.net.parameters()).dtype))


def _recipe(seed: int = 0, **over) -> CSI:
    torch.manual_seed(seed)
    return CSI(Cast(), CSIConfig(**{**SMALL, **over}))


def _images(n: int = 6, seed: int = 1, size: int = 16, channels: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


def _reference(rows: torch.Tensor, n: int, shifts: int, proj_dim: int, tau: float, lam: float):
    """con-SI + λ·cls-SI by explicit loops over the 2·K·n rows (row v·K·n + k·n + i)."""
    R = rows.shape[0]
    assert R == 2 * shifts * n
    z, logits = rows[:, :proj_dim], rows[:, proj_dim:]

    def where(r: int) -> tuple[int, int, int]:
        v, rest = divmod(r, shifts * n)
        k, i = divmod(rest, n)
        return v, k, i

    def cos(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(a @ b / (a.norm() * b.norm()))

    con = 0.0
    for r in range(R):
        v, k, i = where(r)
        p = (1 - v) * shifts * n + k * n + i  # the other view of (image i, rotation k)
        denominator = sum(math.exp(cos(z[r], z[a]) / tau) for a in range(R) if a != r)
        con += -(cos(z[r], z[p]) / tau - math.log(denominator))
    cls = 0.0
    for r in range(R):
        _, k, _ = where(r)
        row = logits[r].tolist()
        cls += -(row[k] - math.log(sum(math.exp(x) for x in row)))
    return con / R + lam * cls / R, con / R, cls / R


@pytest.mark.parametrize(("shifts", "lam"), [(4, 1.0), (3, 0.7), (2, 0.0), (1, 2.0)])
def test_loss_equals_an_explicit_loop(shifts, lam):
    recipe = _recipe(shifts=shifts, shift_weight=lam, temperature=0.3).to(F64)
    n = 3
    g = torch.Generator().manual_seed(5)
    rows = torch.randn(2 * shifts * n, 8 + shifts, generator=g, dtype=F64)
    out = recipe.loss({"views": rows}, {"images": _images(n)})
    want, con, cls = _reference(rows, n, shifts, 8, 0.3, lam)
    assert out.loss.dtype == F64
    assert abs(float(out.loss) - want) < 1e-10
    assert abs(out.metrics["con_si"] - con) < 1e-10
    assert abs(out.metrics["shift_ce"] - cls) < 1e-10
    assert torch.equal(out.embeddings, rows[:n, :8])  # view 0 of the unrotated images


def test_one_shift_without_shift_loss_is_simclr():
    csi = _recipe(shifts=1, shift_weight=0.0, temperature=0.2).to(F64)
    simclr = SimCLR(copy.deepcopy(csi.encoder), SimCLRConfig(**SMALL, temperature=0.2)).to(F64)
    simclr.head.load_state_dict(csi.head.state_dict())
    batch = {"images": _images(8)}
    torch.manual_seed(11)
    a = csi.step(batch)
    torch.manual_seed(11)
    b = simclr.step(batch)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-12, rtol=0)
    torch.testing.assert_close(a.embeddings, b.embeddings, atol=1e-12, rtol=0)
    a.loss.backward()
    b.loss.backward()
    for (name, p), q in zip(csi.encoder.named_parameters(), simclr.encoder.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-12, rtol=0, msg=name)
    for p, q in zip(csi.head.parameters(), simclr.head.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-12, rtol=0)
    # and on the same embeddings, whatever they are
    rows = torch.randn(16, 9, dtype=F64)
    simclr_loss = simclr.loss({"views": rows[:, :8]}, batch).loss
    torch.testing.assert_close(csi.loss({"views": rows}, batch).loss, simclr_loss)


def test_rotate_is_rot90_on_the_image_axes():
    x = _images(3, size=5, channels=2)
    once = rotate(x, 1)
    assert torch.equal(rotate(rotate(rotate(once, 1), 1), 1), x)
    assert torch.equal(rotate(x, 4), x) and torch.equal(rotate(x, 0), x)
    assert torch.equal(rotate(x, 2), x.flip(2, 3))
    assert torch.equal(rotate(x, -1), rotate(x, 3))
    # counter-clockwise: the top row becomes the left column, read bottom-up
    assert torch.equal(once[:, :, :, 0], x[:, :, 0, :].flip(-1))
    with pytest.raises(ValueError, match="batch dimension"):
        rotate(x[0], 1)


def test_prepared_rows_are_the_rotated_views_in_the_documented_order():
    recipe = _recipe(shifts=4)
    # deterministic views: view 0 is the image, view 1 its mirror image
    recipe.views = Views([nn.Identity(), K.RandomHorizontalFlip(p=1.0)])
    n, shifts = 3, 4
    images = _images(n)
    inputs = recipe.prepare({"images": images})["inputs"]
    assert inputs.shape == (2 * shifts * n, 1, 16, 16)
    x = images.float() / 255
    for v in range(2):
        for k in range(shifts):
            for i in range(n):
                want = torch.rot90(x[i : i + 1], k, dims=(2, 3))
                if v == 1:
                    want = want.flip(3)
                got = inputs[v * shifts * n + k * n + i : v * shifts * n + k * n + i + 1]
                torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    ids = recipe.ids({"images": images}, n)
    assert ids.tolist() == [
        i * shifts + k for _ in range(2) for k in range(shifts) for i in range(n)
    ]


def test_step_trains_every_module_and_reports_its_terms():
    recipe = _recipe()
    out = recipe.step({"images": _images(8)})
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.embeddings.shape == (8, 8) and not out.embeddings.requires_grad
    assert set(out.metrics) == {"con_si", "shift_ce", "shift_accuracy"}
    want = out.metrics["con_si"] + 1.0 * out.metrics["shift_ce"]
    assert abs(float(out.loss.detach()) - want) < 1e-5
    out.loss.backward()
    for part in (recipe.encoder, recipe.head, recipe.shift_head):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads)
    assert recipe.shift_head.out_features == 4


def test_score_features_are_the_two_parts_of_embed():
    recipe = _recipe().eval()
    x = recipe.prepare({"images": _images(4)})["inputs"][:4]
    with torch.no_grad():
        z, logits = recipe.score_features(x)
        rows = recipe.embed("views", x)
    assert z.shape == (4, 8) and logits.shape == (4, 4)
    torch.testing.assert_close(torch.cat([z, logits], dim=1), rows)


def test_a_few_trainer_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    recipe = CSI(SmallCNN(3, width=8, stages=2), CSIConfig(**{**SMALL, "channels": 3}))
    # random pixels, brighter towards the top: an orientation the shift classifier can learn
    ramp = torch.linspace(1.0, 0.2, 16).view(1, 1, 16, 1)
    images = (_images(48, channels=3).float() * ramp).to(torch.uint8)
    data = ImageSet(images=images, labels=None, name="random")
    cfg = TrainConfig(
        epochs=4,
        batch_size=16,
        optimizer="sgd",
        lr=0.5,
        precision="fp32",
        progress=False,
        monitor_every=0,
        out_dir=str(tmp_path),
        tensorboard=False,
    )
    history = Trainer(recipe, data, cfg).fit()
    assert len(history) == 4
    for row in history:
        assert math.isfinite(row["loss"]) and math.isfinite(row["shift_ce"])
    # both terms fall: the contrastive loss, and the shift classifier learns the orientation
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["shift_ce"] < history[0]["shift_ce"]
    assert history[-1]["shift_accuracy"] > 0.25  # better than chance


def test_bad_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"square.*resize or centre-crop.*shifts=1"):
        _recipe().prepare({"images": torch.zeros(2, 1, 16, 12, dtype=torch.uint8)})
    # one shift rotates nothing, so any shape will do
    _recipe(shifts=1).prepare({"images": torch.zeros(2, 1, 16, 12, dtype=torch.uint8)})
    for shifts in (0, -1, 5, 2.0):
        with pytest.raises(ValueError, match=r"shifts must be an integer from 1 to 4.*shifts=4"):
            _recipe(shifts=shifts)
    with pytest.raises(ValueError, match=r"shift_weight.*≥ 0"):
        _recipe(shift_weight=-1.0)
    with pytest.raises(ValueError, match="proj_dim \\+ shifts"):
        _recipe().loss({"views": torch.randn(48, 9)}, {"images": _images(6)})
