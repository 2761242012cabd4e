"""SCARF (Bahri et al. 2022, "SCARF: Self-Supervised Contrastive Learning using Random
Feature Corruption"): the anchor is the row itself, the positive the row with a random
``round(c·F)`` of its features replaced by draws from their empirical marginals over the
training rows; encoder + projection head; InfoNCE of anchors against positives.

The views are :class:`contrastkit.augment.tabular.MarginalCorruption`, whose training rows
(``reference``) are a non-persistent buffer: moved with the recipe, never checkpointed or
exported. The encoder is any module of float rows (B, F), usually
:class:`contrastkit.encoders.tabular.TabularMLP` (the paper's 4 × 256 ReLU network). Batches
hold the rows under ``"table"`` (float (B, F)) and, optionally, ``"indices"`` ((B,) data-set
indices: global instance ids).

With ``reconstruction_weight > 0`` a VIME-style term (Yoon et al. 2020) is added: a linear
head on the corrupted row's encoding predicts which cells were corrupted (binary
cross-entropy) and the original values of the numeric columns (squared error).

Example:
    >>> import torch
    >>> from contrastkit.encoders.tabular import TabularMLP
    >>> train = torch.cat([torch.randn(32, 3), torch.randint(0, 4, (32, 1)).float()], 1)
    >>> recipe = SCARF(TabularMLP(3, [4], hidden=16, depth=2), SCARFConfig(), reference=train)
    >>> out = recipe.step({"table": train[:8], "indices": torch.arange(8)})
    >>> out.loss.ndim, out.embeddings.shape
    (0, torch.Size([8, 16]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.augment.tabular import MarginalCorruption
from contrastkit.heads import ProjectionHead
from contrastkit.losses import info_nce
from contrastkit.train.recipe import LossOutput, Recipe

__all__ = ["SCARF", "SCARFConfig"]


@dataclass
class SCARFConfig:
    """SCARF hyper-parameters (defaults: the paper's).

    Attributes:
        corruption_rate: the fraction c of each row's features replaced by marginal draws
            (0.6 in the paper; exactly ``round(c·F)`` per row).
        temperature: InfoNCE τ on cosine similarities (1.0 in the paper).
        proj_dim: width of the projection (0: the encoder's width; the paper's head g keeps
            256 units).
        proj_layers: layers of the projection head g (2 ReLU layers in the paper), no BatchNorm.
        reconstruction_weight: weight of the VIME-style mask-and-reconstruct term (0: off,
            the paper's SCARF).
    """

    corruption_rate: float = 0.6
    temperature: float = 1.0
    proj_dim: int = 0
    proj_layers: int = 2
    reconstruction_weight: float = 0.0


class SCARF(Recipe):
    """Encoder + projection head + marginal corruption + InfoNCE (one tower, ``"table"``).

    Args:
        encoder: float rows (B, F) → (B, encoder.out_dim).
        config: :class:`SCARFConfig`.
        reference: (M, F) training rows whose column marginals the corruption draws from (all
            training rows, labels unused); may be given later with :meth:`set_reference`.
    """

    name = "scarf"
    modality = "table"
    towers: ClassVar[tuple[str, ...]] = ("table",)
    #: the paper (§4): Adam, learning rate 0.001 at batch 128 (0.002 at 256 under linear
    #: scaling, the convention of ``optim_defaults``); the paper names no weight decay
    optim_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam",
        "lr": 0.002,
        "weight_decay": 0.0,
    }

    def __init__(
        self,
        encoder: nn.Module,
        config: SCARFConfig | None = None,
        reference: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = c = config or SCARFConfig()
        if c.temperature <= 0:
            raise ValueError(f"SCARF temperature must be > 0, got {c.temperature}.")
        if c.reconstruction_weight < 0:
            raise ValueError(
                f"SCARF reconstruction_weight must be ≥ 0, got {c.reconstruction_weight}."
            )
        self.encoder = encoder
        width = c.proj_dim or encoder.out_dim
        self.head = ProjectionHead(encoder.out_dim, width, width, c.proj_layers, bn=False)
        self.corruption: MarginalCorruption | None = None
        self.reconstruction: nn.Linear | None = None
        if reference is not None:
            self.set_reference(reference)

    @property
    def reference(self) -> Tensor | None:
        """(M, F) the training rows the corruption draws from (a non-persistent buffer)."""
        return None if self.corruption is None else self.corruption.reference

    def set_reference(self, reference: Tensor) -> None:
        """Use ``reference`` (M, F), the training rows, as the marginals of the corruption (and
        fix F for the reconstruction head, built here when ``reconstruction_weight > 0``)."""
        c = self.config
        corruption = MarginalCorruption(reference, c.corruption_rate)
        p = next(self.encoder.parameters(), None)
        if p is not None:
            corruption = corruption.to(device=p.device, dtype=p.dtype)
        self.corruption = corruption
        if c.reconstruction_weight > 0 and (
            self.reconstruction is None
            or self.reconstruction.out_features != 2 * corruption.num_features
        ):
            # per cell: a mask logit, then the cell's original value
            self.reconstruction = nn.Linear(self.encoder.out_dim, 2 * corruption.num_features)
            if p is not None:
                self.reconstruction.to(device=p.device, dtype=p.dtype)

    def _rows(self, batch: dict[str, Any]) -> Tensor:
        x = batch.get("table")
        if not isinstance(x, Tensor) or x.dim() != 2:
            raise ValueError(
                "the scarf recipe trains on tables: the batch needs 'table', float rows (B, F); "
                f"got {type(x).__name__ if not isinstance(x, Tensor) else tuple(x.shape)}."
            )
        if self.corruption is None:
            raise ValueError(
                "SCARF needs the training rows to draw corruptions from: build it with "
                "SCARF(encoder, config, reference=train_rows) or call recipe.set_reference(rows)."
            )
        return x

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Rows ``batch["table"]`` (B, F) → ``inputs``: (2B, F), the B anchors (the rows as
        they are) then their B corrupted positives; ``"mask"``: (B, F) bool, the corrupted
        cells."""
        x = self._rows(batch)
        with torch.no_grad():
            x = x.to(self.corruption.reference.dtype)
            corrupted, mask = self.corruption(x)
        return {**batch, "inputs": torch.cat([x, corrupted]), "mask": mask}

    def embed(self, tower: str, rows: Tensor) -> Tensor:
        """(R, F) rows → (R, D) projections; with reconstruction, (R, D + 2F): each row's
        projection then its reconstruction outputs (mask logits, values)."""
        h = self.encoder(rows)
        z = self.head(h)
        if self.reconstruction is not None:
            z = torch.cat([z, self.reconstruction(h).to(z.dtype)], dim=1)
        return z

    def loss(self, by_tower: dict[str, Tensor], prepared: dict[str, Any]) -> LossOutput:
        out = by_tower["table"]
        n = out.shape[0] // 2
        width = self.head.out_dim
        z = out[:, :width]
        ids = prepared.get("indices")
        kind = "labels"  # data-set indices: global ids, gathered as they are
        if ids is None:
            ids, kind = torch.arange(n, device=z.device), "instances"
        # the paper's loss: each anchor against every positive of the batch
        loss = info_nce(
            z[:n], z[n:], query_ids=ids, temperature=self.config.temperature, gather=kind
        )
        metrics: dict[str, float] = {}
        w = self.config.reconstruction_weight
        if w > 0 and self.reconstruction is not None:
            f = (out.shape[1] - width) // 2  # the table's columns
            mask_logits, values = out[n:, width : width + f], out[n:, width + f :]
            mask = prepared["mask"].to(mask_logits.dtype)
            target = prepared["table"].to(values.dtype)
            numeric = int(getattr(self.encoder, "n_numeric", f))
            mask_loss = F.binary_cross_entropy_with_logits(mask_logits, mask)
            value_loss = (
                F.mse_loss(values[:, :numeric], target[:, :numeric]) if numeric else 0.0 * mask_loss
            )
            loss = loss + w * (mask_loss + value_loss)
            metrics = {
                "mask_loss": float(mask_loss.detach()),
                "value_loss": float(value_loss.detach()),
            }
        return LossOutput(loss=loss, embeddings=z[:n].detach(), metrics=metrics)
