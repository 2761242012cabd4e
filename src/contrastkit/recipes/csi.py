"""CSI (Tack et al. 2020): contrast shifted instances and predict the shift, for novelty detection.

Each image is rotated by k·90° for k = 0 … K−1 (``shifts`` = K); every rotated copy is a new
*instance* (con-SI: a rotated image is a negative of its unrotated self) and an auxiliary
linear head predicts k from the encoder's features (cls-SI)::

    loss = con-SI + λ · cls-SI
    con-SI = NT-Xent over the 2·K·N projections, the two views of (image i, rotation k)
             being the only positives of each other (instance id i·K + k)
    cls-SI = cross-entropy of shift_head(f) against k, averaged over all 2·K·N rows

With ``shifts=1`` and ``shift_weight=0`` it is exactly SimCLR. The anomaly scorer uses
:meth:`CSI.score_features` on each rotation of a test image (:func:`rotate`).

Reference: Tack, Mo, Jeong, Shin 2020, "CSI: Novelty Detection via Contrastive Learning on
Distributionally Shifted Instances" (NeurIPS).

Example:
    >>> import torch
    >>> from contrastkit.encoders import SmallCNN
    >>> from contrastkit.recipes.csi import CSI, CSIConfig
    >>> recipe = CSI(SmallCNN(in_channels=1, width=8, stages=2),
    ...              CSIConfig(image_size=16, channels=1, proj_hidden=32, proj_dim=16))
    >>> images = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)
    >>> out = recipe.step({"images": images})
    >>> out.loss.ndim, tuple(out.embeddings.shape), sorted(out.metrics)
    (0, (8, 16), ['con_si', 'shift_accuracy', 'shift_ce'])
    >>> z, logits = recipe.score_features(recipe.prepare({"images": images})["inputs"][:8])
    >>> tuple(z.shape), tuple(logits.shape)
    ((8, 16), (8, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import distributed as dist
from contrastkit.augment import views_for
from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.recipes._common import like_encoder
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["CSI", "CSIConfig", "rotate"]

#: distinct rotations by multiples of 90°
MAX_SHIFTS = 4


def rotate(images: Tensor, k: int) -> Tensor:
    """(N, C, H, W) images rotated by k·90° counter-clockwise (``torch.rot90`` on dims (2, 3)).

    Any dtype (uint8 images or float views); ``k`` is taken modulo 4, so four rotations by 1
    give the input back. Rotating by an odd ``k`` swaps H and W.
    """
    if images.dim() != 4:
        raise ValueError(
            f"rotate needs a (N, C, H, W) batch, got shape {tuple(images.shape)}; "
            f"add a batch dimension with images[None]."
        )
    return torch.rot90(images, int(k) % 4, dims=(2, 3))


@dataclass
class CSIConfig:
    """CSI hyper-parameters (the paper's CIFAR-10 one-class setting, scaled to CPU batches).

    Attributes:
        image_size, channels: input geometry (views are made at ``image_size``).
        temperature: NT-Xent τ of con-SI (0.5 in the paper).
        proj_hidden, proj_dim, proj_layers: the projection head (2-layer MLP, 128-d output).
        flip: horizontal-flip probability of the views (0 for digits).
        crop_scale: area range of the random resized crops (the paper's (0.08, 1)).
        views: view preset name (see :func:`~contrastkit.augment.views_for`).
        shifts: K, the number of shifting transformations: rotations by k·90° for
            k = 0 … K−1 (1 ≤ K ≤ 4; 4 in the paper; 1 is plain SimCLR).
        shift_weight: λ, the weight of the auxiliary shift-prediction loss cls-SI (1 in the
            paper; 0 trains con-SI alone).
    """

    image_size: int = 32
    channels: int = 3
    temperature: float = 0.5
    proj_hidden: int = 512
    proj_dim: int = 128
    proj_layers: int = 2
    flip: float = 0.5
    crop_scale: tuple[float, float] = (0.08, 1.0)
    views: str = "simclr"
    shifts: int = 4
    shift_weight: float = 1.0


class CSI(Recipe):
    """Encoder + projection head + shift classifier; con-SI + λ·cls-SI on rotated views.

    Modules: ``encoder`` (exported), ``head`` (:class:`~contrastkit.heads.ProjectionHead`,
    encoder.out_dim → ``proj_dim``) and ``shift_head`` (``nn.Linear(encoder.out_dim, K)``).

    Row layout of the ``"views"`` tower (N images, K = ``shifts``): ``prepare`` gives
    (2·K·N, C, S, S) inputs, row ``v·K·N + k·N + i`` being view ``v`` ∈ {0, 1} of image ``i``
    rotated by k·90° (view-major, then rotation, then image; the first N rows are view 0 of
    the unrotated images). ``embed`` gives (R, proj_dim + K) rows: the projection, then the K
    shift logits.
    """

    name = "csi"
    #: LARS as in the paper; lr and weight decay are the SimCLR recipe's (not tuned for CSI)
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "lars",
        "lr": 0.4,
        "weight_decay": 1e-05,
    }
    #: what :meth:`ids` returns: per-rank instance numbers (gathered with a rank offset)
    id_kind = "instances"

    def __init__(self, encoder: nn.Module, config: CSIConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CSIConfig()
        if not isinstance(c.shifts, int) or not 1 <= c.shifts <= MAX_SHIFTS:
            raise ValueError(
                f"CSI shifts must be an integer from 1 to {MAX_SHIFTS} (rotations by k·90°, "
                f"k = 0 … shifts−1), got {c.shifts!r}; use shifts=4 as in the paper, or 1 "
                f"for plain SimCLR."
            )
        if c.shift_weight < 0:
            raise ValueError(
                f"CSI shift_weight (λ of the shift-prediction loss) must be ≥ 0, got "
                f"{c.shift_weight}; use 1.0 as in the paper, or 0 to train con-SI alone."
            )
        self.encoder = encoder
        self.head = ProjectionHead(encoder.out_dim, c.proj_hidden, c.proj_dim, c.proj_layers)
        self.shift_head = nn.Linear(encoder.out_dim, c.shifts)
        self.views = views_for(
            c.views, c.image_size, c.channels, flip=c.flip, scale=tuple(c.crop_scale)
        )

    @property
    def shifts(self) -> int:
        """K, the number of rotations."""
        return int(self.config.shifts)

    def ids(self, batch: dict[str, Tensor], n: int) -> Tensor:
        """(2·K·n,) instance ids of the prepared rows: ``i·K + k`` for image i rotated by k·90°
        (both views share it), numbered from 0 on each rank."""
        k_of_row, i_of_row = self._row_shifts_and_images(n, batch["images"].device)
        return i_of_row * self.shifts + k_of_row

    def _row_shifts_and_images(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """(2·K·n,) rotation index k and image index i of every row of the views tower."""
        K = self.shifts
        k_of_row = torch.arange(K, device=device).repeat_interleave(n).repeat(2)
        i_of_row = torch.arange(n, device=device).repeat(2 * K)
        return k_of_row, i_of_row

    def _check_images(self, images: Tensor) -> None:
        if images.dim() != 4:
            raise ValueError(
                f"CSI needs a (N, C, H, W) image batch, got shape {tuple(images.shape)}."
            )
        h, w = images.shape[-2:]
        if self.shifts > 1 and h != w:
            raise ValueError(
                f"CSI rotates images by 90°, which needs square images, got {h}×{w}; resize "
                f"or centre-crop the data set to a square size (e.g. {min(h, w)}×{min(h, w)}), "
                f"or set shifts=1 (no rotation)."
            )

    def prepare(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``batch`` plus ``"inputs"``: (2·K·N, C, S, S) float views, row ``v·K·N + k·N + i``
        = view v of image i rotated by k·90° (S = ``image_size``)."""
        images = batch["images"]
        self._check_images(images)
        rotated = torch.cat([rotate(images, k) for k in range(self.shifts)])  # (K·N, C, H, W)
        v1, v2 = self.views(rotated)[:2]
        return {**batch, "inputs": like_encoder(torch.cat([v1, v2]), self.encoder)}

    def embed(self, tower: str, inputs: Tensor) -> Tensor:
        """(R, C, S, S) views → (R, proj_dim + K): ``cat([head(f), shift_head(f)])``,
        f = encoder(views)."""
        f = self.encoder(inputs)
        return torch.cat([self.head(f), self.shift_head(f)], dim=1)

    def score_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(R, C, S, S) float images → ((R, proj_dim) projections, un-normalised, and (R, K)
        shift logits), for the anomaly score of one rotation of test images."""
        f = self.encoder(x)
        return self.head(f), self.shift_head(f)

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Tensor]) -> LossOutput:
        """con-SI + λ·cls-SI of the (2·K·N, proj_dim + K) embeddings of the views tower.

        Under torch.distributed every rank's rows are negatives (``gather="instances"``: the
        ids ``i·K + k`` are offset by rank · K·N) and cls-SI is the mean over the global batch.
        """
        c = self.config
        rows = by_tower["views"]
        n = prepared["images"].shape[0]
        z, logits = rows[:, : c.proj_dim], rows[:, c.proj_dim :]
        if logits.shape[1] != self.shifts:
            raise ValueError(
                f"CSI embeddings must have proj_dim + shifts = {c.proj_dim + self.shifts} "
                f"columns, got {rows.shape[1]}; embed them with this recipe's embed()."
            )
        k_of_row, i_of_row = self._row_shifts_and_images(n, rows.device)
        ids = i_of_row * self.shifts + k_of_row
        con = info_nce(z, query_ids=ids, temperature=c.temperature, gather=self.id_kind)
        cls = _global_mean_cross_entropy(logits, k_of_row)
        loss = con + c.shift_weight * cls
        with torch.no_grad():
            hits = dist.all_reduce_sum((logits.argmax(dim=1) == k_of_row).sum())
            total = dist.all_reduce_sum(torch.tensor(rows.shape[0], device=rows.device))
        metrics = {
            "con_si": float(con.detach()),
            "shift_ce": float(cls.detach()),
            "shift_accuracy": float(hits) / max(int(total), 1),
        }
        return LossOutput(loss=loss, embeddings=z[:n].detach(), metrics=metrics)


def _global_mean_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """This rank's share of the cross-entropy averaged over every rank's rows: its sum times
    the world size over the global row count (so that averaging over ranks, as data-parallel
    gradient averaging does, gives the global mean even with unequal rank batches)."""
    total = logits.new_tensor(float(logits.shape[0]))
    total = dist.all_reduce_sum(total)
    ce = F.cross_entropy(logits, target, reduction="sum")
    return ce * dist.world_size() / total.clamp_min(1.0)
